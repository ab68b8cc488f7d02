package verify

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

func TestUnknownKIDRefreshesOnceAfterRotation(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.MinRefreshInterval = time.Hour }))
	old := iss.Mint(nil)
	mustVerify(t, v, old)
	before := iss.Hits()

	iss.Rotate()
	mustVerify(t, v, iss.Mint(nil))
	if got := iss.Hits() - before; got != 1 {
		t.Fatalf("JWKS hits for the new kid = %d, want 1", got)
	}
	// The old key left the JWKS with the refresh; within the minimum
	// interval no further fetch happens for the now unknown kid.
	wantReason(t, v, old, ReasonUnknownKID)
	if got := iss.Hits() - before; got != 1 {
		t.Fatalf("JWKS hits after old kid = %d, want 1", got)
	}
}

func TestUnknownKIDFloodIsBounded(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.MinRefreshInterval = time.Hour }))
	base := iss.Hits()
	tokens := make([]string, 300)
	for n := range tokens {
		tokens[n] = iss.MintWith("RS256", map[string]any{"kid": fmt.Sprintf("random-%d", n)}, nil)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	reasons := map[string]int{}
	for _, raw := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), raw)
			var e *Error
			reason := "accepted"
			if errors.As(err, &e) {
				reason = e.Reason
			}
			mu.Lock()
			reasons[reason]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if reasons[ReasonUnknownKID] != len(tokens) {
		t.Fatalf("reasons = %v, want all %s", reasons, ReasonUnknownKID)
	}
	if got := iss.Hits() - base; got != 1 {
		t.Fatalf("%d unknown kids caused %d JWKS fetches, want 1", len(tokens), got)
	}
}

// The interval is measured on a clock the test moves, so a slow machine
// cannot stretch the gap between two Verify calls past it.
func TestUnknownKIDRefreshRespectsMinInterval(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.MinRefreshInterval = 500 * time.Millisecond }))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	keys := v.all[0].keys
	keys.mu.Lock()
	keys.now = func() time.Time { return now } // read only under keys.mu, by this goroutine's Verify calls
	keys.mu.Unlock()
	base := iss.Hits()
	unknown := iss.MintWith("RS256", map[string]any{"kid": "nope"}, nil)
	wantReason(t, v, unknown, ReasonUnknownKID)
	wantReason(t, v, unknown, ReasonUnknownKID)
	if got := iss.Hits() - base; got != 1 {
		t.Fatalf("hits = %d, want 1 within the minimum interval", got)
	}
	now = now.Add(499 * time.Millisecond)
	wantReason(t, v, unknown, ReasonUnknownKID)
	if got := iss.Hits() - base; got != 1 {
		t.Fatalf("hits = %d, want 1 just before the minimum interval ends", got)
	}
	now = now.Add(time.Millisecond)
	wantReason(t, v, unknown, ReasonUnknownKID)
	if got := iss.Hits() - base; got != 2 {
		t.Fatalf("hits = %d, want 2 after the minimum interval", got)
	}
}

func TestJWKSDownAtStart(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	iss.SetDown(true)
	v := newVerifier(t, issuerCfg(iss, "corp", nil))
	if v.Ready() {
		t.Fatal("Ready before the JWKS loaded")
	}
	waitFor(t, "a failed fetch", func() bool { return iss.Hits() > 0 })
	e := wantReason(t, v, iss.Mint(nil), ReasonJWKSUnavailable)
	if !strings.Contains(e.Description, "not available") {
		t.Fatalf("description %q is not clear", e.Description)
	}
	if v.Ready() {
		t.Fatal("Ready while the JWKS is down")
	}
	iss.SetDown(false)
	waitFor(t, "ready after the JWKS came up", v.Ready)
	mustVerify(t, v, iss.Mint(nil))
}

// A JWKS that never answers in time: Verify returns by the Check's deadline.
func TestSlowJWKSBoundedByContext(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.FetchTimeout = 30 * time.Second }))
	iss.SetDelay(time.Minute)
	iss.Rotate()
	raw := iss.Mint(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	wantReasonCtx(t, ctx, v, raw, ReasonUnknownKID)
	// Not a speed test: the JWKS would take a minute and the fetch timeout is
	// 30s, so returning within 10s proves the deadline was honoured.
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Verify took %v with a 200ms deadline", took)
	}
}

func TestSlowJWKSAtStart(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	iss.SetDelay(time.Minute)
	start := time.Now()
	v := newVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.FetchTimeout = 30 * time.Second }))
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("New blocked %v on a slow JWKS", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	wantReasonCtx(t, ctx, v, iss.Mint(nil), ReasonJWKSUnavailable)
	if time.Since(start) > 10*time.Second {
		t.Fatal("Verify did not honour its deadline")
	}
}

func TestFetchTimeout(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	iss.SetDelay(time.Minute)
	m := observe.NewMetrics()
	v, err := New([]config.Issuer{issuerCfg(iss, "corp", func(c *config.Issuer) { c.FetchTimeout = 100 * time.Millisecond })}, Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	waitFor(t, "a timed-out fetch counted as a failure", func() bool {
		return metricValue(t, m, `tokenwise_jwks_refresh_failures_total{issuer="corp"}`) >= 1
	})
	iss.SetDelay(0)
	waitFor(t, "ready after the JWKS sped up", v.Ready)
	if metricValue(t, m, `tokenwise_jwks_refreshes_total{issuer="corp"}`) < 1 {
		t.Fatal("successful fetch not counted")
	}
}

func TestPeriodicRefresh(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) {
		c.RefreshInterval = 50 * time.Millisecond
		c.MinRefreshInterval = time.Hour
	}))
	mustVerify(t, v, iss.Mint(nil))
	iss.Rotate()
	raw := iss.Mint(nil)
	base := iss.Hits()
	waitFor(t, "a periodic refresh", func() bool { return iss.Hits() > base+1 })
	// The periodic refresh already has the new key, no on-demand fetch needed.
	mustVerify(t, v, raw)
}

// A failed refresh keeps the keys already loaded.
func TestRefreshFailureKeepsKeys(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.RefreshInterval = 20 * time.Millisecond }))
	iss.SetDown(true)
	base := iss.Hits()
	waitFor(t, "failed refreshes", func() bool { return iss.Hits() > base+2 })
	mustVerify(t, v, iss.Mint(nil))
	if !v.Ready() {
		t.Fatal("a failed refresh after the first load must not unready the verifier")
	}
}

func TestJWKSKeyFiltering(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	encKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	iss.AddRawKey(rawJWK(t, &encKey.PublicKey, jwkset.JWKMetadataOptions{KID: "enc", USE: jwkset.UseEnc}))
	opsKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	iss.AddRawKey(rawJWK(t, &opsKey.PublicKey, jwkset.JWKMetadataOptions{KID: "ops", KEYOPS: []jwkset.KEYOPS{jwkset.KeyOpsEncrypt}}))
	smallKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	iss.AddRawKey(rawJWK(t, &smallKey.PublicKey, jwkset.JWKMetadataOptions{KID: "small"}))
	noAlgKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	iss.AddRawKey(rawJWK(t, &noAlgKey.PublicKey, jwkset.JWKMetadataOptions{KID: "noalg"}))
	rsOnly, _ := rsa.GenerateKey(rand.Reader, 2048)
	iss.AddRawKey(rawJWK(t, &rsOnly.PublicKey, jwkset.JWKMetadataOptions{KID: "rs-only", ALG: jwkset.AlgRS256}))
	iss.AddRawKey(json.RawMessage(`{"kty":"oct","kid":"hs","k":"c2VjcmV0"}`))
	iss.AddRawKey(json.RawMessage(`{"kty":"weird","kid":"w"}`))
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.MinRefreshInterval = time.Hour }))

	wantReason(t, v, sign(t, jwt.SigningMethodRS256, encKey, map[string]any{"kid": "enc"}, iss.URL()), ReasonUnknownKID)
	wantReason(t, v, sign(t, jwt.SigningMethodRS256, opsKey, map[string]any{"kid": "ops"}, iss.URL()), ReasonUnknownKID)
	wantReason(t, v, sign(t, jwt.SigningMethodRS256, smallKey, map[string]any{"kid": "small"}, iss.URL()), ReasonUnknownKID)
	// A key without alg may sign any RSA alg the issuer allows.
	mustVerify(t, v, sign(t, jwt.SigningMethodPS256, noAlgKey, map[string]any{"kid": "noalg"}, iss.URL()))
	// A key published for RS256 refuses a PS256 token even though the signature would verify.
	wantReason(t, v, sign(t, jwt.SigningMethodPS256, rsOnly, map[string]any{"kid": "rs-only"}, iss.URL()), ReasonAlgNotAllowed)
	mustVerify(t, v, sign(t, jwt.SigningMethodRS256, rsOnly, map[string]any{"kid": "rs-only"}, iss.URL()))
	// The issuer's own key still works alongside the skipped ones.
	mustVerify(t, v, iss.Mint(nil))
}

func TestParseJWKS(t *testing.T) {
	s := &keySource{name: "t", algs: config.DefaultAlgorithms, log: slog.New(slog.DiscardHandler)}
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	withPrivate := rawPrivateJWK(t, priv, "p")
	body := fmt.Sprintf(`{"keys":[{"kty":"oct","kid":"hs","k":"c2VjcmV0"},%s]}`, withPrivate)
	keys, err := s.parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Marshal().KID != "p" {
		t.Fatalf("keys = %v, want only the RSA key", keys)
	}
	if _, ok := keys[0].Key().(*rsa.PublicKey); !ok {
		t.Fatalf("key is %T: private material from a JWKS must not be kept", keys[0].Key())
	}
	for _, bad := range []string{`{}`, `not json`, `{"keys":{}}`} {
		if _, err := s.parse([]byte(bad)); err == nil {
			t.Errorf("parse(%s) accepted", bad)
		}
	}
	es := &keySource{name: "t", algs: []string{"ES256"}, log: slog.New(slog.DiscardHandler)}
	if keys, _ := es.parse([]byte(fmt.Sprintf(`{"keys":[%s]}`, rawJWK(t, &priv.PublicKey, jwkset.JWKMetadataOptions{KID: "r", ALG: jwkset.AlgRS256})))); len(keys) != 0 {
		t.Fatal("a key whose alg the issuer does not allow was kept")
	}
}

func TestJWKSSizeCap(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	huge := `{"keys":[],"pad":"` + strings.Repeat("x", MaxJWKSBytes) + `"}`
	var hits sync.WaitGroup
	hits.Add(1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, huge)
		once.Do(hits.Done)
	}))
	defer srv.Close()
	m := observe.NewMetrics()
	v, err := New([]config.Issuer{issuerCfg(iss, "corp", func(c *config.Issuer) { c.JWKSURL = srv.URL })}, Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	hits.Wait()
	waitFor(t, "the oversized JWKS to be refused", func() bool {
		return metricValue(t, m, `tokenwise_jwks_refresh_failures_total{issuer="corp"}`) >= 1
	})
	if v.Ready() {
		t.Fatal("an oversized JWKS made the verifier ready")
	}
}

func TestJWKSNonOKStatus(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s := &keySource{url: srv.URL, client: srv.Client(), algs: config.DefaultAlgorithms}
	if _, err := s.download(context.Background()); err == nil || !strings.Contains(err.Error(), "204") {
		t.Fatalf("download of a 204 = %v", err)
	}
	_ = iss
}

// Close stops the refresh loop: once it returns, no JWKS fetch starts again.
// Fetches are counted where the verifier starts them (its HTTP client), not
// where the issuer receives them: a request cancelled by Close may still
// reach the server a moment later, which says nothing about the loop.
func TestCloseStopsRefreshes(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	var started atomic.Int64
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		started.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	v, err := New([]config.Issuer{issuerCfg(iss, "corp", func(c *config.Issuer) { c.RefreshInterval = 10 * time.Millisecond })},
		Options{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	waitFor(t, "three fetches, so refreshes are running", func() bool { return started.Load() >= 3 })
	v.Close()
	v.Close() // idempotent
	after := started.Load()
	// Refreshes every 10ms would show within this window; a loop that
	// stopped never does, however slow the machine.
	time.Sleep(100 * time.Millisecond)
	if n := started.Load() - after; n != 0 {
		t.Fatalf("%d JWKS fetches started after Close returned", n)
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func rawJWK(t testing.TB, pub any, meta jwkset.JWKMetadataOptions) json.RawMessage {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jwk.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawPrivateJWK(t testing.TB, priv any, kid string) json.RawMessage {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(priv, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}, Marshal: jwkset.JWKMarshalOptions{Private: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jwk.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metricValue scrapes m and returns the value of the series line that starts with name.
func metricValue(t testing.TB, m *observe.Metrics, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(rest, &f); err == nil {
				return f
			}
		}
	}
	return 0
}
