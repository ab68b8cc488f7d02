package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/observe"
)

// MaxJWKSBytes caps a JWKS response; a bigger one is refused, so a broken or
// hostile endpoint cannot make tokenwise buffer without bound.
const MaxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted from a JWKS (RFC 7518 §3.3).
const minRSABits = 2048

// firstRetry is the first pause after a failed fetch; it doubles up to the
// refresh interval (at most maxRetry) until a fetch succeeds.
const (
	firstRetry = 200 * time.Millisecond
	maxRetry   = 30 * time.Second
)

// keySource holds one issuer's signing keys and keeps them fresh.
//
// keyfunc's own HTTP storage is not used: its first fetch blocks for up to a
// minute, it waits up to a minute on a 5-minute limiter for an unknown kid
// inside the request, and it has no response size cap. Instead keySource
// fetches the JWKS itself (bounded, filtered) into a jwkset memory storage and
// hands that storage to keyfunc, which still picks the key by kid and checks
// the key's alg against the token's.
type keySource struct {
	name, url       string
	disc            *discovery // nil unless the JWKS URL comes from OIDC discovery
	algs            []string
	client          *http.Client
	fetchTimeout    time.Duration
	refreshInterval time.Duration
	minRefresh      time.Duration
	metrics         *observe.Metrics
	log             *slog.Logger
	// now is the clock minRefresh is measured by (time.Now; tests move it).
	now func() time.Time

	ctx   context.Context // canceled by Verifier.Close
	wg    *sync.WaitGroup
	store *jwkset.MemoryJWKSet
	kf    keyfunc.Keyfunc

	loaded atomic.Bool
	// generation changes whenever the key set does; the token cache uses
	// it to stop trusting tokens verified with keys that may be gone.
	generation  atomic.Uint64
	fingerprint [32]byte // of the installed key set; guarded by the single fetch in flight

	mu         sync.Mutex
	inflight   chan struct{} // closed when the running fetch ends; nil when none runs
	lastErr    error         // result of the latest finished fetch
	lastDemand time.Time     // start of the latest fetch an unknown kid asked for
}

// fetchShared returns a channel closed when a JWKS fetch ends, starting one
// unless one is already running, so there is never more than one in flight.
// s.mu must be held.
func (s *keySource) fetchSharedLocked() chan struct{} {
	if s.inflight != nil {
		return s.inflight
	}
	done := make(chan struct{})
	s.inflight = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.fetch()
		s.mu.Lock()
		s.inflight, s.lastErr = nil, err
		s.mu.Unlock()
		close(done)
	}()
	return done
}

// run fetches the JWKS now, retries with backoff until a fetch succeeds, then
// refreshes every refreshInterval. Failures keep the keys already loaded.
func (s *keySource) run() {
	defer s.wg.Done()
	backoff := firstRetry
	delay := time.Duration(0)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		s.mu.Lock()
		done := s.fetchSharedLocked()
		s.mu.Unlock()
		select {
		case <-s.ctx.Done():
			return
		case <-done:
		}
		if s.result() == nil {
			delay, backoff = s.refreshInterval, firstRetry
		} else {
			delay, backoff = backoff, min(backoff*2, s.refreshInterval, maxRetry)
		}
		timer.Reset(delay)
	}
}

func (s *keySource) result() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// refreshOnDemand is called when a token names a key that is not loaded. It
// starts at most one fetch per minRefresh (joining one already in flight), and
// waits for it no longer than ctx, the Check's deadline: the fetch goes on
// without the caller and its keys serve later requests.
func (s *keySource) refreshOnDemand(ctx context.Context) {
	s.mu.Lock()
	done := s.inflight
	if done == nil {
		if !s.lastDemand.IsZero() && s.now().Sub(s.lastDemand) < s.minRefresh {
			s.mu.Unlock()
			return
		}
		s.lastDemand = s.now()
		done = s.fetchSharedLocked()
	}
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// fetch downloads and installs the JWKS once, bounded by fetchTimeout.
func (s *keySource) fetch() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.fetchTimeout)
	defer cancel()
	keys, err := s.fetchKeys(ctx)
	if err == nil {
		err = s.install(ctx, keys)
	}
	if s.ctx.Err() != nil {
		return err // shutting down: not a fault of the issuer
	}
	s.metrics.JWKSRefresh(s.name, err)
	if err != nil {
		s.log.Warn("jwks fetch failed", "issuer", s.name, "url", s.source(), "error", err)
		return err
	}
	if len(keys) == 0 {
		s.log.Warn("jwks has no usable signing keys", "issuer", s.name, "url", s.source())
	}
	if !s.loaded.Swap(true) {
		s.log.Info("jwks loaded", "issuer", s.name, "keys", len(keys))
	}
	return nil
}

// install replaces the key set, moving to a new generation when it differs
// from the one installed. The new keys are in place before the generation
// moves, so a token verified after it was verified with them.
func (s *keySource) install(ctx context.Context, keys []jwkset.JWK) error {
	if err := s.store.KeyReplaceAll(ctx, keys); err != nil {
		return err
	}
	if fp := fingerprint(keys); fp != s.fingerprint {
		s.fingerprint = fp
		s.generation.Add(1)
	}
	return nil
}

// fingerprint identifies a key set by its keys' JSON forms, in order.
func fingerprint(keys []jwkset.JWK) [32]byte {
	h := sha256.New()
	for _, k := range keys {
		b, _ := json.Marshal(k.Marshal())
		h.Write(b)
		h.Write([]byte{0})
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// download fetches the configured jwks_url.
func (s *keySource) download(ctx context.Context) ([]jwkset.JWK, error) {
	return s.downloadFrom(ctx, s.url)
}

// downloadFrom GETs the JWKS at url and parses it into the keys tokenwise will trust.
func (s *keySource) downloadFrom(ctx context.Context, url string) ([]jwkset.JWK, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("response larger than %d bytes", MaxJWKSBytes)
	}
	return s.parse(body)
}

// parse decodes a JWKS and keeps only public signature keys usable with the
// issuer's algorithms. Unusable keys are skipped (logged), not fatal: one odd
// key must not take down an issuer's other keys.
func (s *keySource) parse(body []byte) ([]jwkset.JWK, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`decode jwks: no "keys" array`)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for n, raw := range set.Keys {
		jwk, err := s.parseKey(raw)
		if err != nil {
			s.log.Debug("jwks key skipped", "issuer", s.name, "index", n, "reason", err)
			continue
		}
		keys = append(keys, jwk)
	}
	return keys, nil
}

// parseKey accepts one JWK if it is an asymmetric public signing key.
func (s *keySource) parseKey(raw json.RawMessage) (jwkset.JWK, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return jwkset.JWK{}, err
	}
	switch {
	case m.KTY == jwkset.KtyOct:
		return jwkset.JWK{}, errors.New("symmetric (oct) key")
	case m.USE != "" && m.USE != jwkset.UseSig:
		return jwkset.JWK{}, fmt.Errorf("use %q is not sig", m.USE)
	case len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify):
		return jwkset.JWK{}, errors.New("key_ops lacks verify")
	case m.ALG != "" && !slices.Contains(s.algs, string(m.ALG)):
		return jwkset.JWK{}, fmt.Errorf("alg %q not allowed for this issuer", m.ALG)
	}
	// Private: false keeps only public material even if the set leaks a private key.
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: false}, jwkset.JWKValidateOptions{})
	if err != nil {
		return jwkset.JWK{}, err
	}
	switch k := jwk.Key().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return jwkset.JWK{}, fmt.Errorf("RSA key of %d bits", k.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return jwkset.JWK{}, fmt.Errorf("unsupported key type %T", k)
	}
	return jwk, nil
}

// key is the jwt.Keyfunc body: it finds the verification key for tok among
// this issuer's keys only. Header parameters that carry or point at keys (jwk,
// jku, x5u, x5c) are never read.
func (s *keySource) key(ctx context.Context, tok *jwt.Token) (any, error) {
	kidV, hasKID := tok.Header["kid"]
	if !hasKID {
		return s.keysForAlg(ctx, tok)
	}
	if _, ok := kidV.(string); !ok {
		return nil, newError(ReasonMalformed, "token kid is not a string")
	}
	k, err := s.kf.KeyfuncCtx(ctx)(tok)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		s.refreshOnDemand(ctx)
		k, err = s.kf.KeyfuncCtx(ctx)(tok)
	}
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, s.missingKey()
	default:
		// keyfunc refuses a key whose own alg differs from the token's.
		return nil, newError(ReasonAlgNotAllowed, "token algorithm does not match its signing key")
	}
}

// keysForAlg serves a token without kid: every loaded key that may sign with
// its alg is a candidate, and jwt tries each.
func (s *keySource) keysForAlg(ctx context.Context, tok *jwt.Token) (any, error) {
	set := s.candidates(ctx, tok)
	if len(set.Keys) == 0 {
		s.refreshOnDemand(ctx)
		set = s.candidates(ctx, tok)
	}
	if len(set.Keys) == 0 {
		return nil, s.missingKey()
	}
	return set, nil
}

func (s *keySource) candidates(ctx context.Context, tok *jwt.Token) jwt.VerificationKeySet {
	alg := tok.Method.Alg()
	all, _ := s.store.KeyReadAll(ctx)
	var set jwt.VerificationKeySet
	for _, jwk := range all {
		if a := jwk.Marshal().ALG; (a == "" || string(a) == alg) && keyFitsAlg(jwk.Key(), alg) {
			set.Keys = append(set.Keys, jwk.Key())
		}
	}
	return set
}

// keyFitsAlg reports whether key's type can verify alg, so a kid-less token
// is never tried against every key of every type.
func keyFitsAlg(key any, alg string) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// missingKey tells a key we do not have from keys we could not load at all.
func (s *keySource) missingKey() *Error {
	if !s.loaded.Load() {
		return newError(ReasonJWKSUnavailable, "signing keys for the token issuer are not available")
	}
	return newError(ReasonUnknownKID, "token signing key is unknown")
}
