package examples

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"github.com/open-policy-agent/opa/v1/tester"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/resource"
)

// proxyConfigs are the HTTP-mode proxy configurations read by these tests
// (nginx and Caddy are run for real by authz/e2e).
var proxyConfigs = []string{"traefik/dynamic.yaml", "ingress-nginx/ingress.yaml"}

// httpModeDirs are the HTTP-mode examples; each README must say which
// headers to copy upstream and what nginx does with a 429.
var httpModeDirs = []string{"nginx", "caddy", "traefik", "ingress-nginx", "envoy-http"}

func loadConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	setExampleEnv(t)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// claimHeaders are the headers tokenwise sets upstream, lowercase.
func claimHeaders(cfg *config.Config) []string {
	var out []string
	for _, h := range cfg.Forward.ClaimsToHeaders {
		out = append(out, strings.ToLower(h))
	}
	return out
}

// traefikDynamic is the part of Traefik's dynamic configuration the example uses.
type traefikDynamic struct {
	HTTP struct {
		Middlewares map[string]struct {
			Headers *struct {
				CustomRequestHeaders map[string]string `json:"customRequestHeaders"`
			} `json:"headers,omitempty"`
			ForwardAuth *struct {
				Address             string   `json:"address"`
				TrustForwardHeader  bool     `json:"trustForwardHeader"`
				AuthResponseHeaders []string `json:"authResponseHeaders"`
			} `json:"forwardAuth,omitempty"`
		} `json:"middlewares"`
		Routers map[string]struct {
			Rule        string   `json:"rule"`
			EntryPoints []string `json:"entryPoints"`
			Middlewares []string `json:"middlewares"`
			Service     string   `json:"service"`
		} `json:"routers"`
		Services map[string]struct {
			LoadBalancer struct {
				Servers []struct {
					URL string `json:"url"`
				} `json:"servers"`
			} `json:"loadBalancer"`
		} `json:"services"`
	} `json:"http"`
}

func TestTraefikForwardAuth(t *testing.T) {
	data, err := os.ReadFile("traefik/dynamic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d traefikDynamic
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, "traefik/tokenwise.yaml")
	if len(d.HTTP.Routers) == 0 {
		t.Fatal("no routers")
	}
	for name, r := range d.HTTP.Routers {
		if _, ok := d.HTTP.Services[r.Service]; !ok {
			t.Errorf("router %s: service %q is not defined", name, r.Service)
		}
		auth := -1
		for i, m := range r.Middlewares {
			mw, ok := d.HTTP.Middlewares[m]
			if !ok {
				t.Fatalf("router %s: middleware %q is not defined", name, m)
			}
			if mw.ForwardAuth != nil {
				auth = i
				checkForwardAuth(t, mw.ForwardAuth.Address, mw.ForwardAuth.TrustForwardHeader, mw.ForwardAuth.AuthResponseHeaders, cfg)
			}
		}
		if auth < 0 {
			t.Fatalf("router %s: no forwardAuth middleware", name)
		}
		// The identity headers are cleared before ForwardAuth sets them.
		for _, h := range claimHeaders(cfg) {
			cleared := slices.ContainsFunc(r.Middlewares[:auth], func(m string) bool {
				mw := d.HTTP.Middlewares[m]
				if mw.Headers == nil {
					return false
				}
				for k, v := range mw.Headers.CustomRequestHeaders {
					if strings.EqualFold(k, h) && v == "" {
						return true
					}
				}
				return false
			})
			if !cleared {
				t.Errorf("router %s: %s is not cleared before forwardAuth", name, h)
			}
		}
	}
}

func checkForwardAuth(t *testing.T, address string, trustForward bool, copied []string, cfg *config.Config) {
	t.Helper()
	if trustForward {
		t.Error("trustForwardHeader must be false: a client's X-Forwarded-* would describe another request")
	}
	checkAuthURL(t, address, cfg)
	for _, h := range claimHeaders(cfg) {
		if !slices.ContainsFunc(copied, func(c string) bool { return strings.EqualFold(c, h) }) {
			t.Errorf("authResponseHeaders %v lacks %s, which tokenwise sets", copied, h)
		}
	}
}

// checkAuthURL checks that a proxy's auth URL reaches tokenwise's HTTP
// authorization listener.
func checkAuthURL(t *testing.T, raw string, cfg *config.Config) {
	t.Helper()
	if !cfg.HTTPAuthz.Enabled() {
		t.Fatal("tokenwise.yaml does not turn on http_authz")
	}
	_, port, _ := net.SplitHostPort(cfg.HTTPAuthz.Address)
	if !strings.Contains(raw, ":"+port+"/") && !strings.HasSuffix(raw, ":"+port) {
		t.Errorf("auth URL %q is not tokenwise's http_authz port %s", raw, port)
	}
}

func TestIngressNginxAnnotations(t *testing.T) {
	data, err := os.ReadFile("ingress-nginx/ingress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var svc *corev1.Service
	var ing *networkingv1.Ingress
	for _, doc := range splitDocs(data) {
		var head struct{ Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "Service":
			v, err := strict[corev1.Service](doc)
			if err != nil {
				t.Fatal(err)
			}
			svc = v.(*corev1.Service)
		case "Ingress":
			v, err := strict[networkingv1.Ingress](doc)
			if err != nil {
				t.Fatal(err)
			}
			ing = v.(*networkingv1.Ingress)
		default:
			t.Fatalf("unexpected kind %q", head.Kind)
		}
	}
	if svc == nil || ing == nil {
		t.Fatal("want a Service and an Ingress")
	}
	authURL := ing.Annotations["nginx.ingress.kubernetes.io/auth-url"]
	wantHost := svc.Name + "." + svc.Namespace + ".svc.cluster.local:"
	if !strings.Contains(authURL, "://"+wantHost) {
		t.Errorf("auth-url %q does not name the Service %s/%s", authURL, svc.Namespace, svc.Name)
	}
	if len(svc.Spec.Ports) != 1 || !strings.Contains(authURL, wantHost+itoa(svc.Spec.Ports[0].Port)) {
		t.Errorf("auth-url %q is not on the Service's port", authURL)
	}
	if svc.Spec.Ports[0].TargetPort.IntValue() != 9193 {
		t.Errorf("the Service must reach tokenwise's http_authz port 9193, got %v", svc.Spec.Ports[0].TargetPort)
	}
	copied := strings.Split(ing.Annotations["nginx.ingress.kubernetes.io/auth-response-headers"], ",")
	if !slices.ContainsFunc(copied, func(c string) bool { return strings.EqualFold(strings.TrimSpace(c), "x-user-id") }) {
		t.Errorf("auth-response-headers %v lacks X-User-Id", copied)
	}
}

func itoa(n int32) string {
	b, _ := yaml.Marshal(n)
	return strings.TrimSpace(string(b))
}

// TestEnvoyHTTPServiceMatchesTokenwise checks the http_service variant
// against its tokenwise.yaml: the same path prefix, the listener's port, the
// claim headers allowed upstream, and the forwarding headers kept from tokenwise.
func TestEnvoyHTTPServiceMatchesTokenwise(t *testing.T) {
	cfg := loadConfig(t, "envoy-http/tokenwise.yaml")
	ext := extAuthzOf(t, "envoy-http/envoy.yaml")
	hs := ext.GetHttpService()
	if hs == nil {
		t.Fatal("no http_service")
	}
	if hs.GetPathPrefix() != cfg.HTTPAuthz.PathPrefix {
		t.Errorf("path_prefix %q, tokenwise's %q", hs.GetPathPrefix(), cfg.HTTPAuthz.PathPrefix)
	}
	checkAuthURL(t, hs.GetServerUri().GetUri(), cfg)
	var upstream []string
	for _, m := range hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders().GetPatterns() {
		upstream = append(upstream, m.GetExact())
	}
	for _, h := range claimHeaders(cfg) {
		if !slices.Contains(upstream, h) {
			t.Errorf("allowed_upstream_headers %v lacks %s", upstream, h)
		}
	}
	var blocked []string
	for _, m := range ext.GetDisallowedHeaders().GetPatterns() {
		blocked = append(blocked, m.GetExact())
	}
	for _, h := range []string{"x-forwarded-method", "x-forwarded-uri", "x-original-method", "x-original-uri", "x-original-url"} {
		if !slices.Contains(blocked, h) {
			t.Errorf("disallowed_headers lacks %s: a client could describe another request", h)
		}
	}
	if ext.GetFailureModeAllow() {
		t.Error("failure_mode_allow must be false")
	}
}

func extAuthzOf(t *testing.T, path string) *extauthzv3.ExtAuthz {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBootstrap(data)
	if err != nil {
		t.Fatal(err)
	}
	var found *extauthzv3.ExtAuthz
	if err := everyMessage(b, func(m proto.Message) {
		if e, ok := m.(*extauthzv3.ExtAuthz); ok {
			found = e
		}
	}); err != nil {
		t.Fatal(err)
	}
	if found == nil {
		t.Fatalf("%s: no ext_authz filter", path)
	}
	return found
}

// TestMCPExample checks the MCP deployment: tokens must name the resource,
// Envoy sends the metadata path through ext_authz (where tokenwise answers
// it), and the policy's own tests pass.
func TestMCPExample(t *testing.T) {
	cfg := loadConfig(t, "mcp/tokenwise.yaml")
	validate(t, cfg, "mcp")
	rm := cfg.ResourceMetadata
	if !rm.Enabled() || !slices.Contains(cfg.Issuers[0].Audiences, rm.Resource) {
		t.Fatalf("resource %q must be on and among the issuer's audiences %v", rm.Resource, cfg.Issuers[0].Audiences)
	}
	if !cfg.Forward.RemoveAuthorization {
		t.Error("an MCP server must not receive the client's token (no token passthrough)")
	}
	meta, err := resource.New(rm, cfg.Issuers, cfg.Token)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("mcp/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `match: {prefix: "`+resource.WellKnown+`"}`) {
		t.Errorf("envoy.yaml must route %s (metadata path %s) through ext_authz", resource.WellKnown, meta.Path())
	}
	if strings.Contains(string(data), "disabled: true") {
		t.Error("no route of the MCP example may skip ext_authz: the metadata is answered there")
	}
	if ext := extAuthzOf(t, "mcp/envoy.yaml"); ext.GetGrpcService() == nil || ext.GetFailureModeAllow() {
		t.Error("the MCP example asks tokenwise over gRPC and fails closed")
	}
	runPolicyTests(t, "mcp/policies", 4)
	readme, _ := os.ReadFile("mcp/README.md")
	for _, want := range []string{"resource_metadata", meta.URL(), "authorization_servers", "resource="} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("mcp/README.md does not explain %q", want)
		}
	}
}

func runPolicyTests(t *testing.T, dir string, atLeast int) {
	t.Helper()
	modules, store, err := tester.Load([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := tester.NewRunner().SetStore(store).SetModules(modules).RaiseBuiltinErrors(true).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		if !r.Pass() {
			t.Error(r.String())
		}
	}
	if n < atLeast {
		t.Fatalf("%s: ran %d tests", dir, n)
	}
}

// TestHTTPModeReadmes: each HTTP-mode example says which headers to copy
// upstream and warns that nginx turns an auth subrequest's 429 into a 500.
func TestHTTPModeReadmes(t *testing.T) {
	for _, dir := range httpModeDirs {
		data, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Error(err)
			continue
		}
		text := strings.ToLower(string(data))
		for _, want := range []string{"x-user-id", "429", "500", "trusted_proxies"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s/README.md does not mention %s", dir, want)
			}
		}
	}
}
