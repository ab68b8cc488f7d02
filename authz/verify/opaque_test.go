package verify

import (
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/introspect/introspecttest"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

func TestIsJWT(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	for raw, want := range map[string]bool{
		iss.Mint(nil):                  true,
		"ory_at_abc.def":               false,
		"abc":                          false,
		"":                             false,
		"a.b.c":                        false, // header not JSON
		"W10.e30.sig":                  false, // header [] is not an object
		"eyJhbGciOiJSUzI1NiJ9.%%%.x":   true,  // a JWT header: refused as malformed later
		"eyJhbGciOiJSUzI1NiJ9..":       true,
		"eyJhbGciOiJSUzI1NiJ9.a.b.c.d": false, // five segments: a JWE, not a JWS
	} {
		if got := isJWT(raw); got != want {
			t.Errorf("isJWT(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestOpaqueAccepted(t *testing.T) {
	e := introspecttest.New(t)
	exp := time.Now().Add(time.Hour).Unix()
	e.Set("opaque-1", map[string]any{
		"sub": "alice", "jti": "j-1", "scope": "orders:read orders:write", "exp": exp, "iat": time.Now().Unix(),
		"iss": e.Issuer(), "client_id": "web", "cnf": map[string]any{"jkt": "abc"},
	})
	v := newVerifier(t, e.Config("hydra"))
	if !v.Ready() {
		t.Fatal("an issuer that only introspects is not ready at once")
	}
	tok := mustVerify(t, v, "opaque-1")
	if tok.Issuer != "hydra" || tok.Format != FormatOpaque || tok.Header != nil {
		t.Errorf("token = %+v", tok)
	}
	if tok.Subject != "alice" || tok.ID != "j-1" || tok.Expiry.Unix() != exp || len(tok.Scopes) != 2 {
		t.Errorf("token = %+v", tok)
	}
	if _, ok := tok.Claims["active"]; ok {
		t.Error("claims keep active")
	}
	if _, ok := tok.Claims["cnf"]; !ok {
		t.Error("claims lost cnf")
	}
	if tok.ContentHash != sha256.Sum256([]byte("opaque-1")) {
		t.Error("ContentHash is not the SHA-256 of the token")
	}
	// Cached: the same Token, no second request.
	if again := mustVerify(t, v, "opaque-1"); again != tok || e.Calls() != 1 {
		t.Errorf("second Verify: same token %v, calls %d", again == tok, e.Calls())
	}
}

func TestOpaqueInactiveAndUnavailable(t *testing.T) {
	e := introspecttest.New(t)
	v := newVerifier(t, e.Config("hydra"))
	wantReason(t, v, "never-issued", ReasonInactive)
	e.Set("good", map[string]any{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	e.FailWith(http.StatusBadGateway)
	if err := wantReason(t, v, "good", ReasonIntrospectionUnavailable); !err.Unavailable() {
		t.Error("introspection_unavailable is not Unavailable")
	}
	e.FailWith(0)
	mustVerify(t, v, "good")
	e.Close()
	wantReason(t, v, "other", ReasonIntrospectionUnavailable)
}

func TestOpaqueClaimRules(t *testing.T) {
	e := introspecttest.New(t)
	now := time.Now()
	hour := now.Add(time.Hour).Unix()
	cfg := e.Config("hydra")
	cfg.Audiences = []string{"orders-api"}
	cfg.MaxLifetime = 2 * time.Hour
	v := newVerifier(t, cfg)
	cases := map[string]struct {
		answer map[string]any
		reason string
	}{
		"expired":             {map[string]any{"aud": "orders-api", "exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()}, ReasonExpired},
		"not yet valid":       {map[string]any{"aud": "orders-api", "exp": hour, "iat": now.Unix(), "nbf": now.Add(10 * time.Minute).Unix()}, ReasonNotYetValid},
		"issued in future":    {map[string]any{"aud": "orders-api", "exp": hour, "iat": now.Add(10 * time.Minute).Unix()}, ReasonNotYetValid},
		"other issuer":        {map[string]any{"aud": "orders-api", "exp": hour, "iat": now.Unix(), "iss": "https://evil.example"}, ReasonUnknownIssuer},
		"issuer not string":   {map[string]any{"aud": "orders-api", "exp": hour, "iat": now.Unix(), "iss": 7}, ReasonUnknownIssuer},
		"no aud":              {map[string]any{"exp": hour, "iat": now.Unix()}, ReasonAudience},
		"wrong aud":           {map[string]any{"aud": []string{"billing"}, "exp": hour, "iat": now.Unix()}, ReasonAudience},
		"no exp":              {map[string]any{"aud": "orders-api", "iat": now.Unix()}, ReasonMissingExp},
		"too long":            {map[string]any{"aud": "orders-api", "exp": now.Add(3 * time.Hour).Unix(), "iat": now.Unix()}, ReasonLifetime},
		"no iat":              {map[string]any{"aud": "orders-api", "exp": hour}, ReasonLifetime},
		"sub not string":      {map[string]any{"aud": "orders-api", "exp": hour, "iat": now.Unix(), "sub": 1}, ReasonMalformed},
		"hydra refresh token": {map[string]any{"aud": "orders-api", "exp": hour, "iat": now.Unix(), "token_use": "refresh_token"}, ReasonNotAccessToken},
		"refresh token_type":  {map[string]any{"aud": "orders-api", "exp": hour, "iat": now.Unix(), "token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, ReasonNotAccessToken},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e.Set("tok-"+name, c.answer)
			wantReason(t, v, "tok-"+name, c.reason)
			wantReason(t, v, "tok-"+name, c.reason) // a cached answer is judged alike
		})
	}
	e.Set("fine", map[string]any{"aud": []string{"billing", "orders-api"}, "exp": hour, "iat": now.Unix(), "iss": e.Issuer(),
		"token_use": "access_token", "token_type": "Bearer"})
	mustVerify(t, v, "fine")
}

func TestOpaqueRouting(t *testing.T) {
	hydra, other, fallback := introspecttest.New(t), introspecttest.New(t), introspecttest.New(t)
	exp := map[string]any{"exp": time.Now().Add(time.Hour).Unix()}
	hydra.Set("ory_at_1", exp)
	other.Set("ory_x", exp)
	fallback.Set("plain", exp)
	cfgs := []config.Issuer{hydra.Config("hydra"), other.Config("other"), fallback.Config("fallback")}
	cfgs[0].Introspection.TokenPrefix = "ory_at_"
	cfgs[1].Introspection.TokenPrefix = "ory_"
	v := newVerifier(t, cfgs...)
	for raw, want := range map[string]string{"ory_at_1": "hydra", "ory_x": "other", "plain": "fallback"} {
		if tok := mustVerify(t, v, raw); tok.Issuer != want {
			t.Errorf("%s went to %s, want %s", raw, tok.Issuer, want)
		}
	}
	if hydra.Calls() != 1 || other.Calls() != 1 || fallback.Calls() != 1 {
		t.Errorf("calls %d %d %d, want one each", hydra.Calls(), other.Calls(), fallback.Calls())
	}
	// Without an unprefixed issuer, a token matching no prefix is not a JWT.
	v = newVerifier(t, cfgs[0], cfgs[1])
	wantReason(t, v, "plain", ReasonNotJWT)
	if fallback.Calls() != 1 {
		t.Error("the token was sent to an endpoint not configured for it")
	}
	if _, err := New([]config.Issuer{cfgs[2], func() config.Issuer {
		c := cfgs[1]
		c.Introspection = &config.Introspection{URL: other.URL()}
		return c
	}()}, Options{}); err == nil {
		t.Error("New accepted two introspecting issuers without a prefix")
	}
}

func TestJWTOfIntrospectingIssuer(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	e := introspecttest.New(t)
	// Introspection only: no jwks_url, no discovery_url, so no keys.
	only := e.Config("hydra")
	only.Issuer = iss.URL()
	v := newVerifier(t, only)
	wantReason(t, v, iss.Mint(nil), ReasonNoKeys)
	if iss.Hits() != 0 {
		t.Error("the JWKS of an issuer that only introspects was fetched")
	}
	// Beside a JWKS: JWTs verify with the keys, opaque tokens by introspection.
	beside := issuerCfg(iss, "corp", func(c *config.Issuer) { c.Introspection = only.Introspection })
	v = readyVerifier(t, beside)
	mustVerify(t, v, iss.Mint(nil))
	e.Set("opaque", map[string]any{"exp": time.Now().Add(time.Hour).Unix(), "iss": iss.URL()})
	if tok := mustVerify(t, v, "opaque"); tok.Issuer != "corp" || tok.Format != FormatOpaque {
		t.Errorf("token = %+v", tok)
	}
}

func TestIntrospectionURLFromDiscovery(t *testing.T) {
	e := introspecttest.New(t)
	cfg := e.Config("hydra")
	cfg.Introspection.URL = "" // discovery's introspection_endpoint
	v := newVerifier(t, cfg)
	e.Set("opaque", map[string]any{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})
	if tok := mustVerify(t, v, "opaque"); tok.Subject != "bob" {
		t.Errorf("token = %+v", tok)
	}
}
