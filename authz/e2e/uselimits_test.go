package e2e

import (
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// fleet is several tokenwise replicas sharing one issuer.
type fleet []*harness

// checkConcurrently sends n Checks of the same POST spread over the
// replicas at once and counts how many were allowed and their deny statuses.
func (f fleet) checkConcurrently(t *testing.T, n int, path, token string) (allowed int64, statuses map[int]int) {
	t.Helper()
	return f.checkConcurrentlyMethod(t, n, "POST", path, token)
}

// checkConcurrentlyMethod is checkConcurrently with another method.
func (f fleet) checkConcurrentlyMethod(t *testing.T, n int, method, path, token string) (allowed int64, statuses map[int]int) {
	t.Helper()
	var wg sync.WaitGroup
	var ok atomic.Int64
	var mu sync.Mutex
	statuses = map[int]int{}
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a := read(f[i%len(f)].check(envoyRequest(method, path, bearer(token))))
			if a.allowed {
				ok.Add(1)
				return
			}
			mu.Lock()
			statuses[a.status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return ok.Load(), statuses
}

// expectExactUseLimits checks that the fleet's replicas together allow a
// one-time token (/pay) once and a max_uses 4 token (/download) four times
// out of 200 concurrent Checks; mint makes a token with the given jti.
func expectExactUseLimits(t *testing.T, f fleet, mint func(jti string) string) {
	t.Helper()
	if allowed, statuses := f.checkConcurrently(t, 200, "/pay", mint("pay-1")); allowed != 1 || statuses[401] != 199 {
		t.Errorf("one-time over two replicas: allowed %d, denials %v", allowed, statuses)
	}
	if allowed, statuses := f.checkConcurrently(t, 200, "/download", mint("dl-1")); allowed != 4 || statuses[401] != 196 {
		t.Errorf("max_uses 4 over two replicas: allowed %d, denials %v", allowed, statuses)
	}
}

func redisStore(addr string) func(*config.Config) {
	return func(c *config.Config) {
		c.UseLimits.Store = "redis"
		c.UseLimits.Redis.Address = addr
		// A loaded CI machine (2 cores, -race) can take longer than the
		// production default; tests that exercise the timeout set their own.
		c.RateLimits.Timeout = 5 * time.Second
	}
}

// startFleet runs n replicas that trust the same issuer, each with edit applied.
func startFleet(t *testing.T, n int, edit func(*config.Config)) fleet {
	return startFleetPolicy(t, n, policy, edit)
}

func TestAOneTimeTokenIsAllowedOnceInOneProcess(t *testing.T) {
	f := startFleet(t, 1, func(*config.Config) {})
	token := f[0].issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": "pay-1"})
	allowed, statuses := f.checkConcurrently(t, 200, "/pay", token)
	if allowed != 1 || statuses[401] != 199 {
		t.Fatalf("allowed %d, denials %v; want exactly 1 allowed and 199 × 401", allowed, statuses)
	}
	a := read(f[0].check(envoyRequest("POST", "/pay", bearer(token))))
	if !strings.Contains(a.headers["www-authenticate"], `error_description="token has already been used"`) {
		t.Errorf("the replay's challenge = %q", a.headers["www-authenticate"])
	}
}

func TestUseLimitsHoldAcrossReplicasSharingRedis(t *testing.T) {
	redis := redistest.Start(t)
	f := startFleet(t, 2, redisStore(redis.Addr()))
	mint := func(jti string) string {
		return f[0].issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": jti})
	}

	expectExactUseLimits(t, f, mint)

	// A request the policy denies never burns a use.
	denied := mint("pay-2")
	for range 3 {
		if a := read(f[0].check(envoyRequest("GET", "/orders/1", bearer(denied)))); a.status != 403 {
			t.Fatalf("expected the policy to deny: %+v", a)
		}
	}
	if a := read(f[1].check(envoyRequest("POST", "/pay", bearer(denied)))); !a.allowed {
		t.Errorf("denied requests burned the one-time token: %+v", a)
	}
}

func TestARedisOutageFailsClosedForLimitedTokensOnly(t *testing.T) {
	redis := redistest.Start(t)
	f := startFleet(t, 1, redisStore(redis.Addr()))
	h := f[0]
	mint := func(jti string) string {
		return h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read", "jti": jti})
	}

	redis.Stop()
	if a := read(h.check(envoyRequest("POST", "/pay", bearer(mint("pay-1"))))); a.allowed || a.status != 503 {
		t.Fatalf("limited token with Redis down: %+v, want 503", a)
	} else if a.headers["www-authenticate"] != "" {
		t.Errorf("503 carries a challenge: %q", a.headers["www-authenticate"])
	}
	if a := read(h.check(envoyRequest("GET", "/orders/1", bearer(mint("plain"))))); !a.allowed {
		t.Fatalf("a token without a limit was refused during the outage: %+v", a)
	}
	if h.readyz() != 200 {
		t.Error("a Redis outage made the replica unready")
	}

	redis.Restart()
	// rueidis re-dials its connections one by one; wait until fresh one-time
	// tokens pass several times in a row, without restarting tokenwise.
	streak := 0
	eventually(t, 10*time.Second, func() bool {
		if read(h.check(envoyRequest("POST", "/pay", bearer(mint(fmt.Sprintf("warm-%d", time.Now().UnixNano())))))).allowed {
			streak++
		} else {
			streak = 0
		}
		return streak == 5
	})
	token := mint("pay-2")
	if a := read(h.check(envoyRequest("POST", "/pay", bearer(token)))); !a.allowed {
		t.Fatalf("a fresh one-time token was refused after Redis came back: %+v", a)
	}
	if a := read(h.check(envoyRequest("POST", "/pay", bearer(token)))); a.allowed || a.status != 401 {
		t.Fatalf("limits do not work again after Redis came back: %+v", a)
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `tokenwise_use_limit_store_errors_total{store="redis"}`) {
		t.Error("/metrics does not count store errors")
	}
}

func TestOnStoreErrorAllowLetsLimitedTokensThrough(t *testing.T) {
	redis := redistest.Start(t)
	f := startFleet(t, 1, func(c *config.Config) {
		redisStore(redis.Addr())(c)
		c.UseLimits.OnStoreError = "allow"
	})
	redis.Stop()
	token := f[0].issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": "pay-1"})
	if a := read(f[0].check(envoyRequest("POST", "/pay", bearer(token)))); !a.allowed {
		t.Fatalf("on_store_error: allow still denied: %+v", a)
	}
}

// A one-time token without jti is keyed by its signed content, so spelling
// its signature differently does not make a second token.
func TestRespelledSignaturesDoNotReuseAOneTimeToken(t *testing.T) {
	h := start(t)
	h.waitReady()
	claims := map[string]any{"sub": "alice", "aud": "orders-api"}

	rs := h.issuer.Mint(claims)
	if a := read(h.check(envoyRequest("POST", "/pay", bearer(rs)))); !a.allowed {
		t.Fatalf("first use refused: %+v", a)
	}
	for _, replay := range respell(rs) {
		if a := read(h.check(envoyRequest("POST", "/pay", bearer(replay)))); a.allowed {
			t.Fatalf("a re-encoded signature was allowed as a new token")
		}
	}

	es := h.issuer.MintWith("ES256", nil, claims)
	if a := read(h.check(envoyRequest("POST", "/pay", bearer(es)))); !a.allowed {
		t.Fatalf("first ES256 use refused: %+v", a)
	}
	if a := read(h.check(envoyRequest("POST", "/pay", bearer(highS(t, es))))); a.allowed {
		t.Fatal("the ECDSA (r, n-s) twin of a one-time token was allowed")
	}
}

// respell returns spellings of the token's signature whose last base64url
// character differs only in unused trailing bits.
func respell(token string) []string {
	i := strings.LastIndexByte(token, '.')
	sig := token[i+1:]
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	var out []string
	for d := 1; d < 4; d++ {
		out = append(out, token[:len(token)-1]+string(alphabet[last^d]))
	}
	return out
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// highS replaces an ES256 signature (r, s) by (r, n-s), which verifies too.
func highS(t *testing.T, token string) string {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v", err)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := append([]byte{}, sig[:32]...)
	out = append(out, s.FillBytes(make([]byte, 32))...)
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(out)
}
