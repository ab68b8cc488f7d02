package httpfront

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/request"
)

var loopback = Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}}

// authRequest is an authorization request as a proxy sends it, from peer.
func authRequest(method, target, peer string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = peer
	r.Host = "tokenwise:9193"
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestOriginalRequestShapes(t *testing.T) {
	cases := []struct {
		name    string
		opts    Options
		req     *http.Request
		method  string
		scheme  string
		host    string
		path    string
		wantErr string
	}{
		{name: "traefik", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000",
			"X-Forwarded-Method", "POST", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "shop.test", "X-Forwarded-Uri", "/orders/1?x=y"),
			method: "POST", scheme: "https", host: "shop.test", path: "/orders/1?x=y"},
		{name: "caddy without host uses Host", opts: loopback, req: authRequest("GET", "/check", "[::1]:5000",
			"X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", "/orders/2"),
			method: "DELETE", scheme: "http", host: "tokenwise:9193", path: "/orders/2"},
		{name: "nginx URI", opts: loopback, req: authRequest("GET", "/_auth", "127.0.0.1:5000",
			"X-Original-Method", "PUT", "X-Original-URI", "/pay?id=3", "X-Forwarded-Host", "shop.test", "X-Forwarded-Proto", "https"),
			method: "PUT", scheme: "https", host: "shop.test", path: "/pay?id=3"},
		{name: "ingress-nginx URL", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000",
			"X-Original-Method", "GET", "X-Original-URL", "https://shop.test:8443/a%20b?q=1"),
			method: "GET", scheme: "https", host: "shop.test:8443", path: "/a%20b?q=1"},
		{name: "envoy with prefix", opts: Options{PathPrefix: "/authz", TrustedProxies: loopback.TrustedProxies}, req: authRequest("PATCH", "/authz/orders/1?v=2", "127.0.0.1:5000"),
			method: "PATCH", scheme: "http", host: "tokenwise:9193", path: "/orders/1?v=2"},
		{name: "untrusted peer: forwarded headers ignored", opts: loopback, req: authRequest("GET", "/public/x", "10.0.0.9:5000",
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/admin", "X-Original-URI", "/admin", "X-Forwarded-Proto", "https"),
			method: "GET", scheme: "http", host: "tokenwise:9193", path: "/public/x"},
		{name: "both shapes refused", opts: loopback, req: authRequest("GET", "/_auth", "127.0.0.1:5000",
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public", "X-Original-Method", "GET", "X-Original-URI", "/admin"),
			wantErr: "one kind"},
		{name: "forwarded uri twice", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000",
			"X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/public", "X-Forwarded-Uri", "/admin"),
			wantErr: "more than once"},
		{name: "forwarded uri without method", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000", "X-Forwarded-Uri", "/admin"),
			wantErr: "X-Forwarded-Method is required"},
		{name: "nginx without method", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000", "X-Original-URI", "/admin"),
			wantErr: "X-Original-Method is required"},
		{name: "relative X-Original-URL", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000", "X-Original-Method", "GET", "X-Original-URL", "/admin"),
			wantErr: "absolute"},
		{name: "bad forwarded proto", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000", "X-Forwarded-Proto", "gopher"),
			wantErr: "http or https"},
		{name: "path outside prefix", opts: Options{PathPrefix: "/authz"}, req: authRequest("GET", "/authzx/orders", "10.0.0.1:1"),
			wantErr: "path prefix"},
		{name: "uri not a path", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000", "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "orders"),
			wantErr: "absolute path"},
		{name: "method not a token", opts: loopback, req: authRequest("GET", "/", "127.0.0.1:5000", "X-Forwarded-Method", "G T", "X-Forwarded-Uri", "/"),
			wantErr: "not an HTTP method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := Request(c.req, c.opts)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrMalformed) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				if req == nil || req.Frontend != request.FrontendHTTP {
					t.Fatal("a refused request must still be described for the log")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{req.Method, req.Scheme, req.Authority, req.Path}
			want := []string{c.method, c.scheme, c.host, c.path}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("got %q, want %q", got, want)
			}
			h := req.Headers
			if h[":method"] != c.method || h[":path"] != c.path || h[":authority"] != c.host || h[":scheme"] != c.scheme {
				t.Errorf("pseudo-headers %v do not match the request line", h)
			}
			if _, ok := h["host"]; ok {
				t.Error("the proxy's Host must not stand for the client's")
			}
		})
	}
}

func TestHeadersAndPeers(t *testing.T) {
	r := authRequest("GET", "/orders", "127.0.0.1:5000",
		"Authorization", "Bearer a", "Authorization", "Bearer b", "X-Request-Id", "rid-1",
		"X-Forwarded-For", "198.51.100.1, 203.0.113.9")
	req, err := Request(r, loopback)
	if err != nil {
		t.Fatal(err)
	}
	if req.Headers["authorization"] != "Bearer a,Bearer b" {
		t.Errorf("repeated headers must be joined as Envoy joins them: %q", req.Headers["authorization"])
	}
	if req.ID != "rid-1" || req.Frontend != request.FrontendHTTP {
		t.Errorf("id %q frontend %q", req.ID, req.Frontend)
	}
	if req.Source.Address != "203.0.113.9" {
		t.Errorf("behind a trusted proxy the client is the last X-Forwarded-For hop, got %q", req.Source.Address)
	}
	r = authRequest("GET", "/orders", "10.9.8.7:4444", "X-Forwarded-For", "203.0.113.9")
	if req, _ = Request(r, loopback); req.Source.Address != "10.9.8.7" || req.Source.Port != 4444 {
		t.Errorf("an untrusted peer is the client itself, got %+v", req.Source)
	}
}

func TestClientCertificate(t *testing.T) {
	der := []byte("not really DER but bytes")
	header := ":" + base64.StdEncoding.EncodeToString(der) + ":"
	req, err := Request(authRequest("GET", "/", "127.0.0.1:1", "Client-Cert", header), loopback)
	if err != nil {
		t.Fatal(err)
	}
	pemText, err := url.QueryUnescape(req.Source.Certificate)
	if err != nil || !strings.HasPrefix(pemText, "-----BEGIN CERTIFICATE-----\n") {
		t.Fatalf("certificate %q is not URL-encoded PEM: %v", req.Source.Certificate, err)
	}
	if p, _ := url.PathUnescape(req.Source.Certificate); p != pemText {
		t.Error("both unescapings must read the same PEM")
	}
	// From an untrusted peer the header is not believed.
	if req, _ := Request(authRequest("GET", "/", "10.0.0.1:1", "Client-Cert", header), loopback); req.Source.Certificate != "" {
		t.Error("Client-Cert believed from an untrusted peer")
	}
	if _, err := Request(authRequest("GET", "/", "127.0.0.1:1", "Client-Cert", "garbage"), loopback); !errors.Is(err, ErrMalformed) {
		t.Errorf("a malformed Client-Cert must be refused: %v", err)
	}
	// A direct caller over mTLS is the client, with its own certificate.
	r := authRequest("GET", "/", "10.0.0.1:1")
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Raw: der}}}
	if req, _ := Request(r, loopback); req.Source.Certificate == "" || req.Scheme != "https" {
		t.Errorf("the connection's certificate is the direct caller's: %+v", req)
	}
}

func TestBodyIsBounded(t *testing.T) {
	r := httptest.NewRequest("POST", "/orders", strings.NewReader(`{"a": "0123456789"}`))
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("Content-Type", "application/json")
	req, err := Request(r, Options{MaxBodyBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	if req.Body != `{"a": "0` || req.Headers["x-envoy-auth-partial-body"] != "true" {
		t.Fatalf("body %q headers %v: want the first 8 bytes, marked partial", req.Body, req.Headers)
	}
	r = httptest.NewRequest("POST", "/orders", strings.NewReader(`{"a":1}`))
	r.RemoteAddr = "10.0.0.1:1"
	if req, _ = Request(r, Options{}); req.Body != `{"a":1}` || req.Size != 7 || req.Headers["x-envoy-auth-partial-body"] != "" {
		t.Fatalf("body %q size %d", req.Body, req.Size)
	}
}
