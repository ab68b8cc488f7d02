package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/introspect/introspecttest"
	tokenwisev1 "github.com/tokenwise/tokenwise/proto/tokenwise/v1"
)

// withIntrospection adds an issuer "hydra" that checks ory_at_ tokens at e.
func withIntrospection(e *introspecttest.Endpoint) func(*config.Config) {
	return func(c *config.Config) {
		is := e.Config("hydra")
		is.Audiences = []string{"orders-api"}
		is.Introspection.TokenPrefix = "ory_at_"
		c.Issuers = append(c.Issuers, is)
	}
}

// opaqueToken is a fresh Hydra-style access token.
func opaqueToken(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "ory_at_" + hex.EncodeToString(b[:16]) + "." + hex.EncodeToString(b[16:])
}

// activeAnswer is an answer the test policy allows on /orders.
func activeAnswer(extra map[string]any) map[string]any {
	a := map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read", "client_id": "web",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

// wantDeny fails the test unless a is a deny with status whose
// WWW-Authenticate (when want is set) contains want.
func wantDeny(t *testing.T, a answer, status int, want string) {
	t.Helper()
	if a.allowed || a.status != status {
		t.Fatalf("allowed=%v status=%d (%s), want deny %d", a.allowed, a.status, a.body, status)
	}
	if want != "" && !strings.Contains(a.headers["www-authenticate"], want) && !strings.Contains(a.body, want) {
		t.Fatalf("answer %q / %s does not say %q", a.headers["www-authenticate"], a.body, want)
	}
}

func TestAnOpaqueTokenIsAllowedByIntrospection(t *testing.T) {
	e := introspecttest.New(t)
	h := start(t, withIntrospection(e))
	h.waitReady()
	token := opaqueToken(t)
	e.Set(token, activeAnswer(nil))
	for range 3 {
		a := read(h.check(envoyRequest("GET", "/orders/1", bearer(token))))
		if !a.allowed {
			t.Fatalf("denied: %+v", a)
		}
		if a.headers["x-user-id"] != "alice" || a.headers["x-scopes"] != "orders:read" {
			t.Errorf("upstream headers = %v", a.headers)
		}
	}
	if e.Calls() != 1 {
		t.Errorf("%d introspection requests for 3 Checks of one token, want 1 (cached)", e.Calls())
	}
	// JWTs of the other issuer still verify beside it.
	jwt := h.issuer.Mint(map[string]any{"sub": "bob", "aud": "orders-api", "scope": "orders:read"})
	if !read(h.check(envoyRequest("GET", "/orders/1", bearer(jwt)))).allowed {
		t.Fatal("a JWT was refused beside an introspecting issuer")
	}
	if strings.Contains(h.logs.String(), token) {
		t.Fatal("the opaque token reached the log")
	}
	_, metrics := h.get("/metrics")
	for _, series := range []string{
		`tokenwise_introspection_requests_total{issuer="hydra",result="active"} 1`,
		`tokenwise_introspection_cache_lookups_total{issuer="hydra",result="hit"} 2`,
		`tokenwise_introspection_duration_seconds_count{issuer="hydra"} 1`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

func TestOpaqueTokensThatFail(t *testing.T) {
	e := introspecttest.New(t)
	h := start(t, withIntrospection(e))
	h.waitReady()

	inactive := opaqueToken(t) // never issued: the endpoint says active: false
	wantDeny(t, read(h.check(envoyRequest("GET", "/orders/1", bearer(inactive)))), 401, "the token is not active")

	wrongAud := opaqueToken(t)
	e.Set(wrongAud, activeAnswer(map[string]any{"aud": "billing"}))
	wantDeny(t, read(h.check(envoyRequest("GET", "/orders/1", bearer(wrongAud)))), 401, `error="invalid_token"`)

	// A failing endpoint is a 503, never cached: once it recovers the same token passes.
	good := opaqueToken(t)
	e.Set(good, activeAnswer(nil))
	e.FailWith(http.StatusInternalServerError)
	a := read(h.check(envoyRequest("GET", "/orders/1", bearer(good))))
	wantDeny(t, a, 503, "")
	if a.headers["www-authenticate"] != "" {
		t.Errorf("a 503 carries a challenge: %q", a.headers["www-authenticate"])
	}
	e.FailWith(0)
	if !read(h.check(envoyRequest("GET", "/orders/1", bearer(good)))).allowed {
		t.Fatal("refused after the endpoint recovered")
	}

	// Down: connections refused.
	e.Close()
	wantDeny(t, read(h.check(envoyRequest("GET", "/orders/1", bearer(opaqueToken(t))))), 503, "")
	if !strings.Contains(h.logs.String(), `"reason":"introspection_unavailable"`) {
		t.Error("the decision log does not say introspection was unavailable")
	}
}

func TestANonJWTWithNowhereToGoIsNotAJWT(t *testing.T) {
	h := start(t)
	h.waitReady()
	a := read(h.check(envoyRequest("GET", "/orders/1", bearer("ory_at_abc.def"))))
	wantDeny(t, a, 401, `error_description="the token is not a JWT"`)
}

func TestAnOpaqueTokenIsUsedOnce(t *testing.T) {
	e := introspecttest.New(t)
	h := start(t, withIntrospection(e))
	h.waitReady()
	withJTI, withoutJTI := opaqueToken(t), opaqueToken(t)
	e.Set(withJTI, activeAnswer(map[string]any{"jti": "op-1"}))
	e.Set(withoutJTI, activeAnswer(nil)) // keyed by the token's hash
	for _, token := range []string{withJTI, withoutJTI} {
		if !read(h.check(envoyRequest("POST", "/pay", bearer(token)))).allowed {
			t.Fatal("first use refused")
		}
		wantDeny(t, read(h.check(envoyRequest("POST", "/pay", bearer(token)))), 401, "token has already been used")
	}
}

func TestOpaqueTokensAreRevokedByJTIAndSubject(t *testing.T) {
	e := introspecttest.New(t)
	h := start(t, withIntrospection(e), withAdminToken)
	h.waitReady()
	byJTI, bySub := opaqueToken(t), opaqueToken(t)
	e.Set(byJTI, activeAnswer(map[string]any{"jti": "leaked-op"}))
	e.Set(bySub, activeAnswer(map[string]any{"sub": "mallory", "iat": time.Now().Add(-time.Hour).Unix()}))
	admin := h.adminClient()
	if _, err := admin.RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "hydra", Jti: "leaked-op"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeSubject(asAdmin(adminToken), &tokenwisev1.RevokeSubjectRequest{Issuer: "hydra", Subject: "mallory"}); err != nil {
		t.Fatal(err)
	}
	refusedAsRevoked(t, h, byJTI)
	refusedAsRevoked(t, h, bySub)
}

func TestThePolicySeesTheTokenFormat(t *testing.T) {
	const rego = `package envoy.authz

default allow := false

allow := {"allowed": true, "headers": {"x-format": input.token.format, "x-header": json.marshal(input.token.header),
	"x-client": input.token.claims.client_id, "x-active": json.marshal(object.get(input.token.claims, "active", "absent"))}} if {
	input.token.format in {"jwt", "opaque"}
}
`
	e := introspecttest.New(t)
	h := startPolicy(t, rego, withIntrospection(e))
	h.waitReady()
	token := opaqueToken(t)
	e.Set(token, activeAnswer(nil))
	a := read(h.check(envoyRequest("GET", "/anything", bearer(token))))
	if !a.allowed || a.headers["x-format"] != "opaque" || a.headers["x-header"] != "null" ||
		a.headers["x-client"] != "web" || a.headers["x-active"] != `"absent"` {
		t.Fatalf("opaque: allowed=%v headers=%v", a.allowed, a.headers)
	}
	jwt := h.issuer.Mint(map[string]any{"sub": "bob", "aud": "orders-api", "client_id": "cli"})
	a = read(h.check(envoyRequest("GET", "/anything", bearer(jwt))))
	if !a.allowed || a.headers["x-format"] != "jwt" || !strings.Contains(a.headers["x-header"], `"alg":"RS256"`) {
		t.Fatalf("jwt: allowed=%v headers=%v", a.allowed, a.headers)
	}
}

func TestReadinessDoesNotWaitForIntrospection(t *testing.T) {
	e := introspecttest.New(t)
	e.Close() // down from the start
	h := start(t, func(c *config.Config) {
		withIntrospection(e)(c)
		c.Issuers = c.Issuers[1:] // only the introspecting issuer: no JWKS at all
	})
	h.waitReady()
	wantDeny(t, read(h.check(envoyRequest("GET", "/orders/1", bearer(opaqueToken(t))))), 503, "")
}

func TestConcurrentChecksOfOneOpaqueTokenShareOneRequest(t *testing.T) {
	e := introspecttest.New(t)
	h := start(t, withIntrospection(e))
	h.waitReady()
	token := opaqueToken(t)
	e.Set(token, activeAnswer(nil))
	const n = 50
	results := make(chan bool, n)
	gate := make(chan struct{})
	for range n {
		go func() {
			<-gate
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := h.client.Check(ctx, envoyRequest("GET", "/orders/1", bearer(token)))
			results <- err == nil && read(resp).allowed
		}()
	}
	close(gate)
	for range n {
		if !<-results {
			t.Fatal("a concurrent Check was not allowed")
		}
	}
	if e.Calls() != 1 {
		t.Fatalf("%d introspection requests for %d concurrent Checks of one token, want 1", e.Calls(), n)
	}
}
