package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/authz/devissuer"
	"github.com/tokenwise/tokenwise/authz/pop"
)

// dpopURL is the URL the dpop scenario's proofs name: newRequest's
// authority and path, https as x-forwarded-proto says.
const dpopURL = "https://api.example.com/orders/42"

// dpopClient is the bench's DPoP client: one ES256 key and a pool of
// RS256 tokens bound to it, verified once and then served from the cache,
// so what the scenario adds over reuse is the proof.
type dpopClient struct {
	key  *ecdsa.PrivateKey
	pool []string
}

// needsDPoP reports whether sel has a DPoP scenario.
func needsDPoP(sel []*scenario) bool {
	for _, s := range sel {
		if s.dpop {
			return true
		}
	}
	return false
}

// startDPoP makes the DPoP key and mints the bound tokens.
func (e *env) startDPoP(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	jkt, err := pop.Thumbprint(key.Public())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.opts.Progress, "bench: minting %d DPoP-bound RS256 tokens\n", poolSize)
	pool, err := parallel(ctx, poolSize, func(i int) (string, error) {
		return e.issuer.Mint(devissuer.Token{
			Subject: fmt.Sprintf("user-%d", i), Scopes: []string{"orders:read"}, Lifetime: time.Hour, Alg: "RS256", JKT: jkt,
		})
	})
	e.dpop = &dpopClient{key: key, pool: pool}
	return err
}

// dpopFeed signs n fresh proofs, one per Check, before the run: a proof is
// accepted once, and signing in the load generator would take the cores
// the servers are measured on. Proofs are valid for dpop_proof_lifetime
// (60s) plus leeway, far longer than a run.
func (e *env) dpopFeed(ctx context.Context, n int) (*feed, error) {
	c := e.dpop
	proofs, err := parallel(ctx, n, func(i int) (string, error) {
		return pop.Sign(c.key, pop.ProofParams{Method: "GET", URL: dpopURL, Token: c.pool[i%len(c.pool)]})
	})
	if err != nil {
		return nil, err
	}
	f := &feed{kind: fresh, values: make([]string, n), proofs: proofs}
	for i := range f.values {
		f.values[i] = "DPoP " + c.pool[i%len(c.pool)]
	}
	return f, nil
}

// parallel computes n values with build on every core.
func parallel(ctx context.Context, n int, build func(i int) (string, error)) ([]string, error) {
	out := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				v, err := build(i)
				if err != nil {
					errs <- err
					return
				}
				out[i] = v
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}
