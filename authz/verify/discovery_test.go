package verify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// provider is an OpenID provider over a real httptest server: it serves the
// discovery document at the well-known path, naming a jwks_uri that the
// test can move, and its URL is the issuer.
type provider struct {
	srv   *httptest.Server
	reads atomic.Int64

	mu      sync.Mutex
	issuer  string // "" means the server's own URL
	jwksURI string
}

func newProvider(t *testing.T, jwksURI string) *provider {
	t.Helper()
	p := &provider{jwksURI: jwksURI}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != config.DiscoveryPath {
			http.NotFound(w, r)
			return
		}
		p.reads.Add(1)
		p.mu.Lock()
		doc := map[string]string{"issuer": p.issuer, "jwks_uri": p.jwksURI}
		p.mu.Unlock()
		if doc["issuer"] == "" {
			doc["issuer"] = p.srv.URL
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) set(issuer, jwksURI string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issuer, p.jwksURI = issuer, jwksURI
}

// discoveryCfg configures keys through discovery only: no jwks_url.
func discoveryCfg(keys *verifytest.Issuer, p *provider) config.Issuer {
	cfg := issuerCfg(keys, "oidc", nil)
	cfg.Issuer, cfg.JWKSURL = p.srv.URL, ""
	return cfg
}

func TestDiscoveryFromIssuerOnly(t *testing.T) {
	keys := verifytest.NewIssuer(t)
	p := newProvider(t, keys.JWKSURL())
	v := readyVerifier(t, discoveryCfg(keys, p))
	tok := mustVerify(t, v, keys.Mint(map[string]any{"iss": p.srv.URL, "sub": "alice"}))
	if tok.Claims["sub"] != "alice" {
		t.Fatalf("claims = %v", tok.Claims)
	}
	if p.reads.Load() != 1 || keys.Hits() < 1 {
		t.Fatalf("discovery read %d times, JWKS %d times; want 1 and at least 1", p.reads.Load(), keys.Hits())
	}
}

func TestDiscoveryURLOverridesWellKnown(t *testing.T) {
	keys := verifytest.NewIssuer(t)
	p := newProvider(t, keys.JWKSURL())
	p.set("urn:corp", keys.JWKSURL())
	cfg := discoveryCfg(keys, p)
	cfg.Issuer, cfg.DiscoveryURL = "urn:corp", p.srv.URL+config.DiscoveryPath
	v := readyVerifier(t, cfg)
	mustVerify(t, v, keys.Mint(map[string]any{"iss": "urn:corp"}))
}

// TestDiscoveryFollowsMovedJWKS: the provider moves its keys to a new
// jwks_uri and takes the old one down; the failed refresh re-reads the
// document and the new keys verify tokens.
func TestDiscoveryFollowsMovedJWKS(t *testing.T) {
	oldKeys, newKeys := verifytest.NewIssuer(t), verifytest.NewIssuer(t)
	p := newProvider(t, oldKeys.JWKSURL())
	v := readyVerifier(t, discoveryCfg(oldKeys, p))
	mustVerify(t, v, oldKeys.Mint(map[string]any{"iss": p.srv.URL}))

	oldKeys.SetDown(true)
	p.set("", newKeys.JWKSURL())
	// The new key's kid is unknown, so Verify asks for a refresh: the old
	// jwks_uri fails, discovery is read again, the new one loads.
	tok := newKeys.MintWith("ES256", nil, map[string]any{"iss": p.srv.URL, "sub": "bob"})
	mustVerify(t, v, tok)
	if p.reads.Load() != 2 {
		t.Fatalf("discovery read %d times, want 2 (start, after the failed refresh)", p.reads.Load())
	}
}

// TestDiscoveryNotReReadWhileJWKSWorks: a working JWKS keeps its URI; the
// document is not fetched on every refresh.
func TestDiscoveryNotReReadWhileJWKSWorks(t *testing.T) {
	keys := verifytest.NewIssuer(t)
	p := newProvider(t, keys.JWKSURL())
	v := readyVerifier(t, discoveryCfg(keys, p))
	keys.Rotate()
	mustVerify(t, v, keys.Mint(map[string]any{"iss": p.srv.URL})) // unknown kid: one refresh
	if p.reads.Load() != 1 {
		t.Fatalf("discovery read %d times, want 1", p.reads.Load())
	}
}

func TestDiscoveryRefusals(t *testing.T) {
	keys := verifytest.NewIssuer(t)
	cases := []struct {
		name, issuer, jwksURI, want string
	}{
		{"issuer mismatch (OIDC Discovery §4.3)", "https://evil.example", keys.JWKSURL(), "not the configured"},
		{"no jwks_uri", "", "", "no jwks_uri"},
		{"plain http jwks_uri off loopback", "", "http://idp.example.com/jwks", "must be https"},
		{"not a URL", "", "::", "jwks_uri"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newProvider(t, "")
			p.set(c.issuer, c.jwksURI)
			d := newDiscovery(discoveryCfg(keys, p), p.srv.Client())
			_, err := d.jwksURL(context.Background(), false)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	// Through the Verifier: keys never load, so tokens are refused as unavailable.
	p := newProvider(t, keys.JWKSURL())
	p.set("https://evil.example", keys.JWKSURL())
	v := newVerifier(t, discoveryCfg(keys, p))
	waitFor(t, "a discovery attempt", func() bool { return p.reads.Load() >= 1 })
	wantReason(t, v, keys.Mint(map[string]any{"iss": p.srv.URL}), ReasonJWKSUnavailable)
	if v.Ready() {
		t.Fatal("Ready with a discovery document for another issuer")
	}
}

func TestDiscoveryEndpointNotAURL(t *testing.T) {
	cfg := config.Issuer{Name: "x", Issuer: "corp"}
	if _, err := New([]config.Issuer{cfg}, Options{}); err == nil || !strings.Contains(err.Error(), "discovery URL") {
		t.Fatalf("New = %v, want a discovery URL error", err)
	}
}
