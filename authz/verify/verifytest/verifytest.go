// Package verifytest runs a real token issuer for tests: a JWKS served over an
// httptest.Server, signing keys that can be rotated, and a way to take the
// JWKS down or slow it. Tests of any package that verifies tokens can use it.
package verifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
)

// JWKSPath is where the issuer serves its JWKS.
const JWKSPath = "/.well-known/jwks.json"

// signingKey is one key the issuer signs with and publishes.
type signingKey struct {
	kid     string
	alg     string
	private crypto.Signer
}

// Issuer is a JWKS server over a real httptest.Server with signing keys it can rotate.
// Its methods are safe for concurrent use; Mint and MintWith fail the test on
// error, so call them from the test's goroutine.
type Issuer struct {
	t     testing.TB
	srv   *httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	keys  map[string]*signingKey // current key by alg
	gen   int
	extra []json.RawMessage
	down  bool
	delay time.Duration
}

// NewIssuer starts an httptest server with one RS256 key and closes it on t.Cleanup.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	i := &Issuer{t: t, keys: map[string]*signingKey{}, gen: 1}
	i.mu.Lock()
	i.addKeyLocked("RS256")
	i.mu.Unlock()
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	return i
}

// URL is the issuer identifier (the iss claim): the server's URL.
func (i *Issuer) URL() string { return i.srv.URL }

// JWKSURL is where the JWKS is served.
func (i *Issuer) JWKSURL() string { return i.srv.URL + JWKSPath }

// Config returns an issuer configuration for this issuer under name, with
// short refresh intervals fit for tests.
func (i *Issuer) Config(name string) config.Issuer {
	return config.Issuer{
		Name:               name,
		Issuer:             i.URL(),
		JWKSURL:            i.JWKSURL(),
		Algorithms:         append([]string(nil), config.DefaultAlgorithms...),
		Leeway:             time.Second,
		RefreshInterval:    time.Minute,
		FetchTimeout:       2 * time.Second,
		MinRefreshInterval: 50 * time.Millisecond,
	}
}

// Mint signs claims with RS256 and the current key. iss, iat and exp (now+5m)
// are filled in when absent; a claim set to nil is left out of the token.
func (i *Issuer) Mint(claims map[string]any) string {
	i.t.Helper()
	return i.MintWith("RS256", nil, claims)
}

// MintWith signs claims with alg (RS256, PS256, ES256 or EdDSA), creating that
// alg's key on first use. header entries override the defaults (alg, typ JWT,
// kid); a header or claim entry set to nil is left out.
func (i *Issuer) MintWith(alg string, header map[string]any, claims map[string]any) string {
	i.t.Helper()
	i.mu.Lock()
	k, ok := i.keys[alg]
	if !ok {
		k = i.addKeyLocked(alg)
	}
	i.mu.Unlock()
	if k == nil {
		i.t.Fatalf("verifytest: unsupported alg %q", alg)
		return ""
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), i.fillClaims(claims))
	tok.Header["kid"] = k.kid
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	s, err := tok.SignedString(k.private)
	if err != nil {
		i.t.Fatalf("verifytest: sign %s: %v", alg, err)
	}
	return s
}

// fillClaims applies the default claims and drops nil entries.
func (i *Issuer) fillClaims(claims map[string]any) jwt.MapClaims {
	now := time.Now()
	out := jwt.MapClaims{"iss": i.URL(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for name, v := range claims {
		if v == nil {
			delete(out, name)
		} else {
			out[name] = v
		}
	}
	return out
}

// KID is the key id of the current key for alg ("" if the issuer has none).
func (i *Issuer) KID(alg string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if k, ok := i.keys[alg]; ok {
		return k.kid
	}
	return ""
}

// PublicKey is the current public key for alg (nil if the issuer has none).
func (i *Issuer) PublicKey(alg string) crypto.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	if k, ok := i.keys[alg]; ok {
		return k.private.Public()
	}
	return nil
}

// Rotate replaces every key with a new one (new kid); old keys leave the JWKS.
func (i *Issuer) Rotate() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.gen++
	for alg := range i.keys {
		i.addKeyLocked(alg)
	}
}

// AddRawKey appends a JWK, as JSON, to the served set, e.g. an oct or enc key.
func (i *Issuer) AddRawKey(jwk json.RawMessage) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.extra = append(i.extra, jwk)
}

// SetDown makes the JWKS answer 503 while down is true.
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
}

// SetDelay makes the JWKS handler wait d (or until the client goes away) before answering.
func (i *Issuer) SetDelay(d time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.delay = d
}

// Hits is the number of JWKS requests served (including 503s).
func (i *Issuer) Hits() int64 { return i.hits.Load() }

// addKeyLocked generates the key for alg; it returns nil for an unsupported alg.
func (i *Issuer) addKeyLocked(alg string) *signingKey {
	var priv crypto.Signer
	var err error
	switch alg {
	case "RS256", "PS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil
	}
	if err != nil {
		panic(fmt.Sprintf("verifytest: generate %s key: %v", alg, err))
	}
	k := &signingKey{kid: fmt.Sprintf("%s-%d", strings.ToLower(alg), i.gen), alg: alg, private: priv}
	i.keys[alg] = k
	return k
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	i.hits.Add(1)
	i.mu.Lock()
	down, delay := i.down, i.delay
	i.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if r.URL.Path != JWKSPath {
		http.NotFound(w, r)
		return
	}
	if down {
		http.Error(w, "jwks is down", http.StatusServiceUnavailable)
		return
	}
	body, err := i.jwks()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(body)
}

// jwks renders the current public keys plus any raw extras.
func (i *Issuer) jwks() ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	algs := make([]string, 0, len(i.keys))
	for alg := range i.keys {
		algs = append(algs, alg)
	}
	sort.Strings(algs)
	keys := make([]json.RawMessage, 0, len(algs)+len(i.extra))
	for _, alg := range algs {
		k := i.keys[alg]
		jwk, err := jwkset.NewJWKFromKey(k.private.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(jwk.Marshal())
		if err != nil {
			return nil, err
		}
		keys = append(keys, raw)
	}
	keys = append(keys, i.extra...)
	return json.Marshal(map[string]any{"keys": keys})
}
