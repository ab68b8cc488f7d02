package devissuer

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// verifier trusts iss's JWKS, served by a real HTTP server, for algs.
func verifier(t *testing.T, iss *Issuer, url string, algs ...string) *verify.Verifier {
	t.Helper()
	cfg := config.Default()
	cfg.Issuers = []config.Issuer{{Name: "dev", Issuer: url, JWKSURL: url + "/jwks.json", Audiences: []string{"api"}, Algorithms: algs}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(cfg.Issuers, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	deadline := time.Now().Add(5 * time.Second)
	for !v.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("JWKS did not load")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return v
}

func TestTokensOfEveryAlgorithmVerifyAgainstTheJWKS(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	iss, err := New(url, "api", WithAlgorithms("RS256", "ES256"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = iss.JWKS()
	srv.Start()
	defer srv.Close()
	v := verifier(t, iss, url, "RS256", "ES256")
	for _, alg := range []string{"", "RS256", "ES256"} {
		raw, err := iss.Mint(Token{Subject: "alice", Scopes: []string{"a", "b"}, Alg: alg})
		if err != nil {
			t.Fatalf("%q: %v", alg, err)
		}
		tok, err := v.Verify(context.Background(), raw)
		if err != nil {
			t.Fatalf("%q: %v", alg, err)
		}
		want := alg
		if want == "" {
			want = "RS256" // the first of WithAlgorithms
		}
		if tok.Header["alg"] != want || tok.Subject != "alice" || strings.Join(tok.Scopes, " ") != "a b" || tok.ID == "" {
			t.Fatalf("%q: token %+v", alg, tok)
		}
	}
}

func TestNewDefaultsToES256Only(t *testing.T) {
	iss, err := New("http://127.0.0.1:1", "api")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := iss.Mint(Token{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "eyJhbGciOiJFUzI1NiIs") { // {"alg":"ES256",
		t.Fatalf("default token is not ES256: %.30s", raw)
	}
	if _, err := iss.Mint(Token{Alg: "RS256"}); err == nil {
		t.Fatal("minted RS256 without an RS256 key")
	}
	if _, err := New("http://127.0.0.1:1", "api", WithAlgorithms("HS256")); err == nil {
		t.Fatal("accepted HS256")
	}
}
