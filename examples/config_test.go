package examples

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwise/tokenwise/authz/grpcfront"
	"github.com/tokenwise/tokenwise/authz/request"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// tokenwiseConfigs are the tokenwise configuration files in the examples.
var tokenwiseConfigs = []string{"envoy/tokenwise.yaml", "nginx/tokenwise.yaml", "caddy/tokenwise.yaml",
	"traefik/tokenwise.yaml", "envoy-http/tokenwise.yaml", "mcp/tokenwise.yaml", "envoy-mtls/tokenwise.yaml"}

// exampleEnv is what the example configurations expect from the environment.
var exampleEnv = map[string]string{
	"OIDC_ISSUER":    "https://idp.example.com/",
	"OIDC_AUDIENCE":  "orders-api",
	"REDIS_PASSWORD": "example",
}

// validate does what `tokenwise validate` does: load the configuration and
// compile its policies. Relative policy paths are read from dir, as the
// README runs tokenwise from the example's directory.
func validate(t *testing.T, cfg *config.Config, dir string) *policy.Engine {
	t.Helper()
	for i, p := range cfg.Policy.Paths {
		if !filepath.IsAbs(p) {
			cfg.Policy.Paths[i] = filepath.Join(dir, p)
		}
	}
	e, err := policy.New(context.Background(), cfg.Policy, policy.Options{})
	if err != nil {
		t.Fatalf("policies: %v", err)
	}
	return e
}

func setExampleEnv(t *testing.T) {
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
}

func TestTokenwiseConfigsValidate(t *testing.T) {
	setExampleEnv(t)
	for _, path := range tokenwiseConfigs {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := cfg.Issuers[0].DiscoveryEndpoint(); got != "https://idp.example.com/.well-known/openid-configuration" {
			t.Errorf("%s: discovery endpoint %q", path, got)
		}
		validate(t, cfg, filepath.Dir(path))
	}
}

// TestConfigMapsValidate loads the tokenwise configuration and policies each
// Kubernetes ConfigMap carries, as the pod would see them mounted.
func TestConfigMapsValidate(t *testing.T) {
	setExampleEnv(t)
	bundledRego, _ := os.ReadFile("../policies/authz.rego")
	bundledData, _ := os.ReadFile("../policies/data.json")
	objs, err := decodeAll(readManifests(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		cm, ok := o.value.(*corev1.ConfigMap)
		if !ok || cm.Name != "tokenwise" {
			continue
		}
		n++
		if cm.Data["authz.rego"] != string(bundledRego) || cm.Data["data.json"] != string(bundledData) {
			t.Errorf("%s: the ConfigMap's policies differ from policies/; copy them again", o.file)
		}
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"authz.rego", "data.json"} {
			if err := os.WriteFile(filepath.Join(dir, "policies", f), []byte(cm.Data[f]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
		if err != nil {
			t.Fatalf("%s: config.yaml: %v", o.file, err)
		}
		if cfg.Policy.Paths[0] != "/etc/tokenwise/policies/" {
			t.Errorf("%s: policy path %q is not where the volume is mounted", o.file, cfg.Policy.Paths[0])
		}
		cfg.Policy.Paths = []string{filepath.Join(dir, "policies")}
		validate(t, cfg, dir)
	}
	if n != 3 {
		t.Fatalf("found %d tokenwise ConfigMaps, want 3", n)
	}
}

// TestExamplePolicyTests runs the example's own _test.rego files, as
// `opa test examples/envoy/policies` would.
func TestExamplePolicyTests(t *testing.T) {
	runPolicyTests(t, "envoy/policies", 5)
}

// TestEnvoyRoutesAgreeWithPolicy sends, for each route of the example's
// envoy.yaml, the context_extensions Envoy would send, and checks the
// example policy's answer: the route table and the policy are one design.
func TestEnvoyRoutesAgreeWithPolicy(t *testing.T) {
	setExampleEnv(t)
	cfg, err := config.Load("envoy/tokenwise.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := validate(t, cfg, "envoy")
	routes := exampleRoutes(t)
	reader := &verify.Token{Issuer: "corp", Claims: map[string]any{"sub": "alice"}, Scopes: []string{"orders:read", "payments:transfer"}}
	cases := []struct {
		route, method, path, body string
		tok                       *verify.Token
		allowed                   bool
		maxUses                   int64
	}{
		{"/public", "GET", "/public/x", "", nil, true, 0},
		{"/orders GET", "GET", "/orders/1", "", reader, true, 0},
		{"/orders GET", "GET", "/orders/1", "", nil, false, 0},
		{"/orders", "POST", "/orders", "", reader, false, 0},
		{"/transfer", "POST", "/transfer", `{"amount": 10}`, reader, true, 1},
		{"/transfer", "POST", "/transfer", `{"amount": 10000}`, reader, false, 0},
		{"/", "GET", "/admin", "", reader, false, 0},
	}
	for _, c := range cases {
		ext, ok := routes[c.route]
		if !ok {
			t.Fatalf("envoy.yaml has no route %q (has %v)", c.route, routes)
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			ContextExtensions: ext,
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: c.method, Path: c.path, Body: c.body,
				Headers: map[string]string{":path": c.path, "content-type": "application/json"},
			}},
		}}
		d, err := e.Decide(context.Background(), grpcRequest(t, req), c.tok)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		if d.Allowed != c.allowed || d.MaxUses != c.maxUses {
			t.Errorf("%s %s via route %s: %+v, want allowed=%v max_uses=%d", c.method, c.path, c.route, d, c.allowed, c.maxUses)
		}
	}
}

// exampleRoutes maps each route of the example envoy.yaml (its path or
// prefix, plus " GET" when it matches the method) to its context_extensions.
func exampleRoutes(t *testing.T) map[string]map[string]string {
	data, err := os.ReadFile("envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBootstrap(data)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	err = everyMessage(b, func(m proto.Message) {
		r, ok := m.(*routev3.Route)
		if !ok {
			return
		}
		key := r.GetMatch().GetPath() + r.GetMatch().GetPrefix()
		for _, h := range r.GetMatch().GetHeaders() {
			key += " " + h.GetStringMatch().GetExact()
		}
		per := &extauthzv3.ExtAuthzPerRoute{}
		if a := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; a != nil {
			if err := a.UnmarshalTo(per); err != nil {
				t.Fatal(err)
			}
		}
		out[key] = per.GetCheckSettings().GetContextExtensions()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
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
