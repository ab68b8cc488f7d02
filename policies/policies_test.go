package policies

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/grpcfront"
	"github.com/tokenwise/tokenwise/authz/request"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// TestRego runs every _test.rego test in this directory through OPA's tester,
// as `opa test .` would, and fails on any failure, error or skipped test.
func TestRego(t *testing.T) {
	modules, store, err := tester.Load([]string{"."}, nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	ch, err := tester.NewRunner().SetStore(store).SetModules(modules).RaiseBuiltinErrors(true).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	n := 0
	for r := range ch {
		n++
		if !r.Pass() {
			t.Error(r.String())
		}
	}
	if n < 10 {
		t.Errorf("ran %d Rego tests; want the bundled suite (at least 10)", n)
	}
}

// TestBundledPolicyThroughEngine loads the embedded files the way
// `tokenwise dev` does and asks real CheckRequests, so the policy and the
// input tokenwise builds agree.
func TestBundledPolicyThroughEngine(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default().Policy
	cfg.Paths = []string{"."}
	e, err := policy.New(ctx, cfg, policy.Options{FS: FS})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tok := &verify.Token{Issuer: "dev", Claims: map[string]any{"sub": "alice"}, Scopes: []string{"payments:transfer"}}
	cases := []struct {
		method, path string
		tok          *verify.Token
		want         policy.Decision
	}{
		{"GET", "/public/hello?x=1", nil, policy.Decision{Allowed: true, Reason: "public route", RequestHeadersToRemove: []string{"x-user-scopes"}}},
		{"GET", "/orders", nil, policy.Decision{Reason: "this route needs a bearer token"}},
		{"POST", "/transfer", tok, policy.Decision{
			Allowed: true, MaxUses: 1, Reason: "token has the route's scopes",
			Headers: []policy.Header{{Name: "x-user-scopes", Value: "payments:transfer"}},
		}},
		{"GET", "/public/%2e%2e/orders", nil, policy.Decision{Reason: "the request path has . or .. segments"}},
	}
	for _, c := range cases {
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: c.method, Path: c.path, Headers: map[string]string{":path": c.path}},
		}}}
		got, err := e.Decide(ctx, grpcRequest(t, req), c.tok)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s: got %+v, want %+v", c.method, c.path, got, c.want)
		}
	}
}

// TestLibraryThroughEngine runs each library policy as a user would select
// it, with policy.query, on real CheckRequests.
func TestLibraryThroughEngine(t *testing.T) {
	ctx := context.Background()
	ask := func(query, method, path string, tok *verify.Token) policy.Decision {
		t.Helper()
		cfg := config.Default().Policy
		cfg.Paths, cfg.Query = []string{"."}, query
		e, err := policy.New(ctx, cfg, policy.Options{FS: FS})
		if err != nil {
			t.Fatalf("New(%s): %v", query, err)
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Headers: map[string]string{":path": path}},
		}}}
		d, err := e.Decide(ctx, grpcRequest(t, req), tok)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return d
	}
	reader := &verify.Token{Issuer: "dev", Claims: map[string]any{"sub": "alice"}, Scopes: []string{"orders:read"}}
	d := ask("data.tokenwise.library.stepup.allow", "POST", "/transfer", reader)
	want := `Bearer realm="tokenwise", error="insufficient_scope", scope="payments:transfer"`
	if d.Allowed || d.HTTPStatus != 403 || !reflect.DeepEqual(d.Headers, []policy.Header{{Name: "www-authenticate", Value: want}}) {
		t.Errorf("stepup: %+v, want a 403 challenge %s", d, want)
	}

	link := &verify.Token{Issuer: "files", Claims: map[string]any{"download": "/downloads/a.pdf", "max_uses": 2}}
	if d := ask("data.tokenwise.library.downloads.allow", "GET", "/downloads/a.pdf", link); !d.Allowed || d.MaxUses != 2 {
		t.Errorf("downloads: %+v, want allowed with max_uses 2", d)
	}

	member := &verify.Token{Issuer: "corp", Claims: map[string]any{"tenant": "acme"}}
	if d := ask("data.tokenwise.library.tenant.allow", "GET", "/tenants/acme/x", member); !d.Allowed ||
		!reflect.DeepEqual(d.Headers, []policy.Header{{Name: "x-tenant-id", Value: "acme"}}) {
		t.Errorf("tenant: %+v, want allowed with x-tenant-id", d)
	}
	if d := ask("data.tokenwise.library.tenant.allow", "GET", "/tenants/globex/x", member); d.Allowed || d.HTTPStatus != 403 {
		t.Errorf("tenant: %+v, want 403", d)
	}

	// The rate-limit library's limits pass tokenwise's own validation.
	member.Claims["sub"] = "alice"
	d = ask("data.tokenwise.library.ratelimits.allow", "GET", "/orders", member)
	if !d.Allowed || len(d.RateLimits) != 2 || d.RateLimits[0].Name != "per-user" || d.RateLimits[0].Burst != 20 || d.RateLimits[1].Per != 24*time.Hour {
		t.Errorf("ratelimits: %+v, want per-user and tenant-quota", d)
	}
}

// TestEveryLibraryPolicyHasTests keeps the library honest: each package
// under library/ must come with Rego tests that run.
func TestEveryLibraryPolicyHasTests(t *testing.T) {
	modules, store, err := tester.Load([]string{"library"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := tester.NewRunner().SetStore(store).SetModules(modules).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]int{}
	for r := range ch {
		ran[r.Package]++
	}
	for _, pkg := range []string{"tokenwise.library.stepup_test", "tokenwise.library.tenant_test", "tokenwise.library.downloads_test", "tokenwise.library.ratelimits_test"} {
		if ran["data."+pkg] < 5 {
			t.Errorf("%s ran %d tests, want at least 5 (ran: %v)", pkg, ran["data."+pkg], ran)
		}
	}
}

// grpcRequest is what the gRPC front end makes of a CheckRequest.
func grpcRequest(t *testing.T, check *authv3.CheckRequest) *request.Request {
	t.Helper()
	req, err := grpcfront.Request(check)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
