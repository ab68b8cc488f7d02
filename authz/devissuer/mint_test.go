package devissuer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// devServer serves the issuer as tokenwise dev does: under /dev, with its
// JWKS, discovery document and mint endpoint, on a real loopback listener.
func devServer(t *testing.T) (*Issuer, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String() + "/dev"
	iss, err := New(base, "api")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /dev/jwks.json", iss.JWKS())
	mux.Handle("GET /dev/.well-known/openid-configuration", iss.Discovery(base+"/jwks.json"))
	mux.Handle("GET /dev/token", iss.MintHandler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return iss, base
}

// A configuration that names only the issuer finds the keys through the
// discovery document.
func TestDiscoveryFindsTheJWKS(t *testing.T) {
	_, base := devServer(t)
	v, err := verify.New([]config.Issuer{{Name: "dev", Issuer: base, Audiences: []string{"api", "other"}, Algorithms: []string{"ES256"}}}, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !v.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	raw := get(t, base+"/token?"+url.Values{"sub": {"bob"}, "aud": {"other"}, "claims": {`{"tenant":"acme","acr":"mfa","iss":"evil"}`}}.Encode(), "", 200)
	tok, err := v.Verify(context.Background(), strings.TrimSpace(raw))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "bob" || tok.Claims["tenant"] != "acme" || tok.Claims["acr"] != "mfa" || tok.Claims["aud"] != "other" || tok.Claims["iss"] != base {
		t.Fatalf("claims = %v", tok.Claims)
	}
}

func TestMintRefusesWhatItDoesNotKnow(t *testing.T) {
	_, base := devServer(t)
	for query, want := range map[string]string{
		"subject=bob":            `unknown parameter "subject"`,
		"sub=a&sub=b":            `parameter "sub" given 2 times`,
		"claims=%5B1%5D":         "claims: want a JSON object",
		"claims=nope":            "claims: want a JSON object",
		"ttl=48h":                "ttl",
		"one_time=maybe":         "one_time",
		"sub=a&scope=x&unknown=": `unknown parameter "unknown"`,
	} {
		if body := get(t, base+"/token?"+query, "", 400); !strings.Contains(body, want) {
			t.Errorf("%s: %q, want %q", query, body, want)
		}
	}
}

// A page on another site whose name was rebound to 127.0.0.1 reaches the
// issuer from loopback, but names its own host: no token for it.
func TestMintRefusesANonLoopbackHost(t *testing.T) {
	_, base := devServer(t)
	for _, host := range []string{"evil.example", "evil.example:9192", "127.0.0.1.nip.io", "10.0.0.1"} {
		get(t, base+"/token", host, 403)
	}
	for _, host := range []string{"localhost:9192", "127.0.0.1", "[::1]:80", "LOCALHOST"} {
		get(t, base+"/token", host, 200)
	}
}

func get(t *testing.T, rawURL, host string, want int) string {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s (Host %q): %d %s, want %d", rawURL, host, resp.StatusCode, b, want)
	}
	return string(b)
}
