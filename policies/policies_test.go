package policies

import (
	"context"
	"reflect"
	"testing"

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
		{"GET", "/public/hello?x=1", nil, policy.Decision{Allowed: true, Reason: "public route"}},
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
		got, err := e.Decide(ctx, req, c.tok)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s: got %+v, want %+v", c.method, c.path, got, c.want)
		}
	}
}
