package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/httpfront/proxytest"
)

// echoed is what the upstream saw of a request that got through.
type echoed struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

// echoUpstream is the service behind the proxy: it answers every request
// with what it received.
func echoUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.RequestURI(), Headers: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startHTTPMode runs tokenwise with the HTTP authorization listener on.
func startHTTPMode(t *testing.T, edit ...func(*config.Config)) *harness {
	t.Helper()
	h := start(t, append([]func(*config.Config){func(c *config.Config) { c.HTTPAuthz.Address = "127.0.0.1:0" }}, edit...)...)
	h.waitReady()
	return h
}

// exampleConfig reads a proxy example from examples/ with the test's
// addresses in place of the example's.
func exampleConfig(t *testing.T, path string, replace ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", path))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(text, replace[i]) {
			t.Fatalf("%s no longer contains %q", path, replace[i])
		}
		text = strings.ReplaceAll(text, replace[i], replace[i+1])
	}
	return text
}

// nginxExample is examples/nginx/tokenwise.conf: auth_request to tokenwise
// with the original request in X-Original-*, x-user-id copied upstream.
func nginxExample(t *testing.T, tokenwise, upstream string) func(int) string {
	return func(port int) string {
		return exampleConfig(t, "nginx/tokenwise.conf", "127.0.0.1:9193", tokenwise, "127.0.0.1:8080",
			strings.TrimPrefix(upstream, "http://"), "listen 8000;", fmt.Sprintf("listen 127.0.0.1:%d;", port))
	}
}

// caddyExample is examples/caddy/Caddyfile: forward_auth to tokenwise.
func caddyExample(t *testing.T, tokenwise, upstream string) func(int) string {
	return func(port int) string {
		return exampleConfig(t, "caddy/Caddyfile", "127.0.0.1:9193", tokenwise, "127.0.0.1:8080",
			strings.TrimPrefix(upstream, "http://"), "shop.example.com {", proxytest.SiteAddress(port))
	}
}

// proxied is one request through a proxy and what came of it.
type proxied struct {
	status   int
	header   http.Header
	body     string
	upstream *echoed
}

func send(t *testing.T, base, method, path string, headers ...string) proxied {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "shop.test"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := proxied{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		p.upstream = &echoed{}
		if err := json.Unmarshal(body, p.upstream); err != nil {
			t.Fatalf("upstream answer %q: %v", body, err)
		}
	}
	return p
}

// TestRealProxiesEnforceTokenwise drives nginx and Caddy in front of an
// upstream, with tokenwise answering their authorization requests over HTTP.
func TestRealProxiesEnforceTokenwise(t *testing.T) {
	proxies := []struct {
		name  string
		start func(t *testing.T, tokenwise, upstream string) *proxytest.Proxy
		// otherStatus is what the client gets when tokenwise denies with a
		// status other than 401/403: nginx turns it into a 500.
		otherStatus int
	}{
		{"nginx", func(t *testing.T, tw, up string) *proxytest.Proxy {
			return proxytest.StartNginx(t, nginxExample(t, tw, up))
		}, 500},
		{"caddy", func(t *testing.T, tw, up string) *proxytest.Proxy {
			return proxytest.StartCaddy(t, caddyExample(t, tw, up))
		}, 402},
	}
	for _, px := range proxies {
		t.Run(px.name, func(t *testing.T) {
			h := startHTTPMode(t)
			up := echoUpstream(t)
			proxy := px.start(t, h.srv.HTTPAuthzAddr(), up.URL)
			defer func() {
				if t.Failed() {
					t.Logf("%s logs:\n%s\ntokenwise logs:\n%s", px.name, proxy.Logs(), h.logs.String())
				}
			}()
			good := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read"})
			noScope := h.issuer.Mint(map[string]any{"sub": "bob", "aud": "orders-api"})
			expired := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix()})

			t.Run("valid token: the upstream gets the claim headers, never the client's", func(t *testing.T) {
				p := send(t, proxy.URL, "GET", "/orders/7?view=full", "Authorization", "Bearer "+good, "X-User-Id", "mallory")
				if p.status != 200 || p.upstream == nil {
					t.Fatalf("status %d body %q", p.status, p.body)
				}
				if got := p.upstream.Headers["X-User-Id"]; len(got) != 1 || got[0] != "alice" {
					t.Errorf("upstream x-user-id %q, want [alice]", got)
				}
				if p.upstream.Path != "/orders/7?view=full" || p.upstream.Method != "GET" {
					t.Errorf("upstream got %s %s", p.upstream.Method, p.upstream.Path)
				}
			})
			t.Run("no token: 401 and the challenge", func(t *testing.T) {
				p := send(t, proxy.URL, "GET", "/orders/7")
				if p.status != 401 || p.header.Get("Www-Authenticate") != `Bearer realm="tokenwise"` || p.upstream != nil {
					t.Fatalf("status %d www-authenticate %q", p.status, p.header.Get("Www-Authenticate"))
				}
			})
			t.Run("expired token: 401 invalid_token", func(t *testing.T) {
				p := send(t, proxy.URL, "GET", "/orders/7", "Authorization", "Bearer "+expired)
				if p.status != 401 || !strings.Contains(p.header.Get("Www-Authenticate"), `error="invalid_token"`) {
					t.Fatalf("status %d www-authenticate %q", p.status, p.header.Get("Www-Authenticate"))
				}
			})
			t.Run("policy denies: 403", func(t *testing.T) {
				p := send(t, proxy.URL, "GET", "/orders/7", "Authorization", "Bearer "+noScope)
				if p.status != 403 || p.upstream != nil {
					t.Fatalf("status %d body %q", p.status, p.body)
				}
				if px.name == "caddy" && !strings.Contains(p.header.Get("Www-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("Caddy relays tokenwise's challenge: %q", p.header.Get("Www-Authenticate"))
				}
			})
			t.Run("the method is the client's", func(t *testing.T) {
				// The policy allows orders only for GET-able scopes; the one-time
				// route counts uses whatever the method, so POST twice.
				tok := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": "pay-" + px.name})
				if p := send(t, proxy.URL, "POST", "/pay", "Authorization", "Bearer "+tok); p.status != 200 || p.upstream == nil || p.upstream.Method != "POST" {
					t.Fatalf("first use: status %d body %q", p.status, p.body)
				}
				if p := send(t, proxy.URL, "POST", "/pay", "Authorization", "Bearer "+tok); p.status != 401 {
					t.Fatalf("second use of a one-time token: status %d", p.status)
				}
			})
			t.Run("public route: no token, and a client's x-user-id is dropped", func(t *testing.T) {
				p := send(t, proxy.URL, "GET", "/public/status", "X-User-Id", "mallory")
				if p.status != 200 || p.upstream == nil {
					t.Fatalf("status %d body %q", p.status, p.body)
				}
				for _, v := range p.upstream.Headers["X-User-Id"] {
					if v != "" {
						t.Errorf("upstream got the client's x-user-id %q", v)
					}
				}
			})
			t.Run("a client cannot name another path in forwarding headers", func(t *testing.T) {
				p := send(t, proxy.URL, "GET", "/orders/7",
					"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public/x",
					"X-Original-Method", "GET", "X-Original-URI", "/public/x", "X-Original-URL", "http://shop.test/public/x")
				if p.status == 200 || p.upstream != nil {
					t.Fatalf("spoofed forwarding headers let the request through: %d", p.status)
				}
			})
			t.Run("a deny with another status", func(t *testing.T) {
				p := send(t, proxy.URL, "GET", "/premium")
				if p.status != px.otherStatus {
					t.Fatalf("status %d, want %d", p.status, px.otherStatus)
				}
			})
			if !strings.Contains(h.logs.String(), `"frontend":"http"`) {
				t.Error("the decision log must say the HTTP front end answered")
			}
		})
	}
}

// TestEnvoyStyleDirectRequests asks the listener as Envoy's http_service
// does: the original request line behind path_prefix, no forwarding headers.
func TestEnvoyStyleDirectRequests(t *testing.T) {
	h := startHTTPMode(t, func(c *config.Config) { c.HTTPAuthz.PathPrefix = "/authz" })
	base := "http://" + h.srv.HTTPAuthzAddr()
	good := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read"})

	p := send(t, base, "GET", "/authz/orders/1", "Authorization", "Bearer "+good, "X-User-Id", "mallory")
	if p.status != 200 || p.body != "" || p.header.Get("X-User-Id") != "alice" || p.header.Get("X-Scopes") != "orders:read" {
		t.Fatalf("allow: %d %q %v", p.status, p.body, p.header)
	}
	p = send(t, base, "GET", "/authz/public/x")
	if p.status != 200 || p.header.Get("X-User-Id") != "" || p.header.Get("X-Envoy-Auth-Headers-To-Remove") != "x-user-id" {
		t.Fatalf("public: %d %v", p.status, p.header)
	}
	p = send(t, base, "GET", "/authz/orders/1")
	if p.status != 401 || p.header.Get("Www-Authenticate") != `Bearer realm="tokenwise"` ||
		p.header.Get("Content-Type") != "application/json" || !strings.Contains(p.body, `"error":"unauthorized"`) {
		t.Fatalf("deny: %d %v %q", p.status, p.header, p.body)
	}
	p = send(t, base, "GET", "/premium")
	if p.status != 400 || !strings.Contains(p.body, "path prefix") {
		t.Fatalf("outside the prefix: %d %q", p.status, p.body)
	}
	p = send(t, base, "GET", "/authz/premium")
	if p.status != 402 || p.body != "pay first" || p.header.Get("X-Reason") != "unpaid" {
		t.Fatalf("policy's own deny: %d %q %v", p.status, p.body, p.header)
	}
	resp, err := http.Get("http://" + h.srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `tokenwise_frontend_decisions_total{frontend="http",outcome="allow"} 2`) {
		t.Errorf("metrics do not count the HTTP front end:\n%s", grep(string(metrics), "frontend"))
	}
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTheHTTPAuthzListenerSpeaksMutualTLS: with http_authz.tls and a client
// CA, only proxies with a certificate from that CA are answered.
func TestTheHTTPAuthzListenerSpeaksMutualTLS(t *testing.T) {
	serverCA, proxyCA := newCA(t, "server CA"), newCA(t, "proxy CA")
	serverCert := serverCA.issue(t, "tokenwise", x509.ExtKeyUsageServerAuth)
	dir := t.TempDir()
	h := startHTTPMode(t, func(c *config.Config) {
		c.HTTPAuthz.TLS = config.TLS{
			CertFile:     writePEM(t, dir, "server.pem", serverCert.Certificate[0]),
			KeyFile:      writeKey(t, dir, "server-key.pem", serverCert),
			ClientCAFile: writePEM(t, dir, "proxy-ca.pem", proxyCA.cert.Raw),
		}
	})
	client := func(cert *tls.Certificate) *http.Client {
		roots := x509.NewCertPool()
		roots.AddCert(serverCA.cert)
		tc := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	url := "https://" + h.srv.HTTPAuthzAddr() + "/orders/1"
	if resp, err := client(nil).Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("a proxy without a certificate was answered")
	}
	resp, err := client(proxyCA.issue(t, "nginx", x509.ExtKeyUsageClientAuth)).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("Www-Authenticate") == "" {
		t.Fatalf("status %d: want tokenwise's 401", resp.StatusCode)
	}
}

// TestForwardedHeadersFromUntrustedPeersAreIgnored: with no trusted proxy, a
// caller's X-Forwarded-Uri cannot move the Check to a public route.
func TestForwardedHeadersFromUntrustedPeersAreIgnored(t *testing.T) {
	h := startHTTPMode(t, func(c *config.Config) { c.HTTPAuthz.TrustedProxies = []string{} })
	base := "http://" + h.srv.HTTPAuthzAddr()
	if p := send(t, base, "GET", "/orders/1", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public/x"); p.status != 401 {
		t.Fatalf("status %d: the forwarded path was believed from an untrusted peer", p.status)
	}
	if p := send(t, base, "GET", "/public/x", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/orders/1"); p.status != 200 {
		t.Fatalf("status %d: the request line is the request", p.status)
	}
}

// TestThePolicyKnowsTheFrontEnd: input.version.ext_authz is "http" for a
// Check that came over HTTP, and the input is otherwise the gRPC one.
func TestThePolicyKnowsTheFrontEnd(t *testing.T) {
	const rego = `package envoy.authz

default allow := false

allow if {
	input.version.ext_authz == "http"
	input.attributes.request.http.method == "DELETE"
	input.attributes.request.http.headers[":authority"] == "shop.test"
	input.attributes.request.http.host == "shop.test"
	input.attributes.source.address.socketAddress.address == "198.51.100.7"
	input.parsed_path == ["orders", "9"]
	input.parsed_query.force == ["yes"]
}
`
	h := startPolicy(t, rego, func(c *config.Config) { c.HTTPAuthz.Address = "127.0.0.1:0" })
	h.waitReady()
	base := "http://" + h.srv.HTTPAuthzAddr()
	p := send(t, base, "GET", "/check", "X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", "/orders/9?force=yes",
		"X-Forwarded-Host", "shop.test", "X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.7")
	if p.status != 200 {
		t.Fatalf("the HTTP Check was denied (%d %s): the policy input differs", p.status, p.body)
	}
	if a := read(h.check(envoyRequest("DELETE", "/orders/9?force=yes", nil))); a.allowed {
		t.Fatal("a gRPC Check must see ext_authz version grpc")
	}
}

// TestRateLimitsThroughRealProxies: Caddy relays tokenwise's 429 with
// Retry-After; nginx's auth_request turns it into a 500, as the examples warn.
func TestRateLimitsThroughRealProxies(t *testing.T) {
	const rego = `package envoy.authz

default allow := false

allow := {"allowed": true, "rate_limits": [{"name": "per-address", "key": input.attributes.source.address.socketAddress.address, "requests": 1, "per": "1h"}]} if input.parsed_path == ["limited"]
`
	for _, px := range []struct {
		name   string
		start  func(t *testing.T, tw, up string) *proxytest.Proxy
		status int
	}{
		{"nginx", func(t *testing.T, tw, up string) *proxytest.Proxy {
			return proxytest.StartNginx(t, nginxExample(t, tw, up))
		}, 500},
		{"caddy", func(t *testing.T, tw, up string) *proxytest.Proxy {
			return proxytest.StartCaddy(t, caddyExample(t, tw, up))
		}, 429},
	} {
		t.Run(px.name, func(t *testing.T) {
			h := startPolicy(t, rego, func(c *config.Config) { c.HTTPAuthz.Address = "127.0.0.1:0" })
			h.waitReady()
			proxy := px.start(t, h.srv.HTTPAuthzAddr(), echoUpstream(t).URL)
			if p := send(t, proxy.URL, "GET", "/limited"); p.status != 200 || p.upstream == nil {
				t.Fatalf("first request: %d %q", p.status, p.body)
			}
			p := send(t, proxy.URL, "GET", "/limited")
			if p.status != px.status {
				t.Fatalf("second request: %d, want %d\n%s", p.status, px.status, proxy.Logs())
			}
			if px.status == 429 && (p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "rate_limited")) {
				t.Errorf("Caddy must relay tokenwise's 429 whole: %v %q", p.header, p.body)
			}
		})
	}
}
