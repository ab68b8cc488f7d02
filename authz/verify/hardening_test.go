package verify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// An empty jti would make every such token share one use count and one
// revocation: it is refused like a malformed claim.
func TestEmptyJTIRefused(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	wantReason(t, v, iss.Mint(map[string]any{"jti": ""}), ReasonMalformed)
	mustVerify(t, v, iss.Mint(map[string]any{"jti": "j1"}))
	mustVerify(t, v, iss.Mint(nil)) // no jti at all is allowed (keyed by content hash)
}

// The unknown iss is named in the error's Detail (for the log), quoted and
// cut; the client's description stays generic.
func TestUnknownIssuerDetail(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	e := wantReason(t, v, iss.Mint(map[string]any{"iss": iss.URL() + "/"}), ReasonUnknownIssuer)
	if want := "iss \"" + iss.URL() + "/\""; e.Detail != want {
		t.Errorf("Detail = %q, want %q", e.Detail, want)
	}
	if strings.Contains(e.Description, iss.URL()) {
		t.Errorf("the description shows the iss to the client: %q", e.Description)
	}
	e = wantReason(t, v, iss.Mint(map[string]any{"iss": "x\n\"y" + strings.Repeat("é", 200)}), ReasonUnknownIssuer)
	if strings.ContainsAny(e.Detail, "\n") || !strings.HasPrefix(e.Detail, `iss "x\n\"y\u00e9`) || len(e.Detail) > 100*6+20 || !strings.HasSuffix(e.Detail, "…") {
		t.Errorf("Detail = %q: want escaped and cut", e.Detail)
	}
}

func TestQuoteCut(t *testing.T) {
	for in, want := range map[string]string{
		"abc":                          `"abc"`,
		strings.Repeat("a", 101):       `"` + strings.Repeat("a", 100) + `"…`,
		"ab" + strings.Repeat("é", 60): `"ab` + strings.Repeat(`\u00e9`, 49) + `"…`,
	} {
		if got := QuoteCut(in, 100); got != want {
			t.Errorf("QuoteCut(%.20q) = %q, want %q", in, got, want)
		}
	}
}

// redirector answers every request with a redirect to target.
func redirector(t *testing.T, target string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A JWKS or discovery redirect must pass the configured URL's rule: a
// loopback http JWKS may not send tokenwise to a plain-http remote host.
// The refusal happens before any connection, so no traffic leaves the host.
func TestRedirectsPassTheURLRule(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	client := withRedirectRule(defaultHTTPClient(), false)
	source := func(url string) *keySource {
		return &keySource{url: url, client: client, algs: config.DefaultAlgorithms}
	}
	ctx := context.Background()

	remote := redirector(t, "http://keys.example.com/jwks.json")
	if _, err := source(remote.URL).download(ctx); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("redirect to plain-http remote host: err = %v, want refused", err)
	}
	ftp := redirector(t, "ftp://127.0.0.1/jwks.json")
	if _, err := source(ftp.URL).download(ctx); err == nil {
		t.Fatal("redirect to ftp followed")
	}
	// A chain longer than MaxRedirects is refused, even on loopback.
	chain := iss.JWKSURL()
	for range MaxRedirects + 1 {
		chain = redirector(t, chain).URL
	}
	if _, err := source(chain).download(ctx); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("redirect chain: err = %v, want refused", err)
	}
	// Positive control: a short loopback chain to the real JWKS works.
	short := redirector(t, redirector(t, iss.JWKSURL()).URL)
	if keys, err := source(short.URL).download(ctx); err != nil || len(keys) == 0 {
		t.Fatalf("loopback redirect: %d keys, %v", len(keys), err)
	}
	// With allow_insecure_jwks_url the issuer opted in to plain http.
	insecure := withRedirectRule(defaultHTTPClient(), true)
	if err := insecure.CheckRedirect(httptest.NewRequest("GET", "http://keys.example.com/", nil), []*http.Request{{}}); err != nil {
		t.Fatalf("allow_insecure_jwks_url refused plain http: %v", err)
	}
}

// Discovery documents go through the same client and rule.
func TestDiscoveryRedirectRefused(t *testing.T) {
	remote := redirector(t, "http://idp.example.com/.well-known/openid-configuration")
	d := &discovery{endpoint: remote.URL, issuer: "https://idp.example.com", client: withRedirectRule(defaultHTTPClient(), false)}
	if _, err := d.read(context.Background()); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("discovery redirect to plain-http remote host: err = %v, want refused", err)
	}
}

// An issuer built by New applies the rule even with a caller's client.
func TestNewAppliesRedirectRule(t *testing.T) {
	remote := redirector(t, "http://keys.example.com/jwks.json")
	cfg := config.Issuer{Name: "corp", Issuer: "https://idp.example.com", JWKSURL: remote.URL}
	v, err := New([]config.Issuer{cfg}, Options{HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.all[0].keys.download(context.Background()); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("err = %v, want the redirect refused", err)
	}
}
