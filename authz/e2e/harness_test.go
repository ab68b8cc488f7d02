package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"log/slog"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokenwise/tokenwise/authz/childproc"
	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/server"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// policy is the Rego a platform team might write: public routes, scopes per
// route, a one-time payment route and a four-use download route.
const policy = `package envoy.authz

default allow := {"allowed": false, "reason": "no rule allows this request"}

allow := {"allowed": true} if input.parsed_path[0] == "public"

allow := {"allowed": true, "headers": {"x-scopes": concat(" ", input.token.scopes)}} if {
	input.parsed_path[0] == "orders"
	"orders:read" in input.token.scopes
}

allow := {"allowed": true, "one_time_use": true} if input.parsed_path == ["pay"]

allow := {"allowed": true, "max_uses": 4} if input.parsed_path == ["download"]

allow := {"allowed": false, "http_status": 402, "body": "pay first", "headers": {"x-reason": "unpaid"}} if input.parsed_path == ["premium"]

# Two rules that both match with different values: an evaluation error.
allow := {"allowed": true} if input.parsed_path == ["conflict"]
allow := {"allowed": false} if input.parsed_path == ["conflict"]
`

// harness is one running tokenwise with its issuer, as a test sees it.
type harness struct {
	t      *testing.T
	issuer *verifytest.Issuer
	srv    *server.Server
	client authv3.AuthorizationClient
	conn   *grpc.ClientConn
	dir    string
	logs   *childproc.Output
	cancel context.CancelFunc
	done   chan error
}

// start runs tokenwise with the policy above and one issuer named "corp";
// edit adjusts the configuration first.
func start(t *testing.T, edit ...func(*config.Config)) *harness {
	t.Helper()
	return startPolicy(t, policy, edit...)
}

// startPolicy is start with another policy.
func startPolicy(t *testing.T, rego string, edit ...func(*config.Config)) *harness {
	t.Helper()
	h := &harness{t: t, issuer: verifytest.NewIssuer(t), dir: t.TempDir(), logs: &childproc.Output{}}
	h.writePolicy("policy.rego", rego)
	cfg := config.Default()
	cfg.GRPC.Address, cfg.HTTP.Address = "127.0.0.1:0", "127.0.0.1:0"
	is := h.issuer.Config("corp")
	is.Audiences = []string{"orders-api"}
	cfg.Issuers = []config.Issuer{is}
	cfg.Policy.Paths = []string{h.dir}
	cfg.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	for _, e := range edit {
		e(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.serve(cfg)
	return h
}

func (h *harness) serve(cfg *config.Config) {
	t := h.t
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(context.Background(), cfg, server.Options{Logger: logger, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.srv, h.cancel, h.done = srv, cancel, make(chan error, 1)
	go func() { h.done <- srv.Serve(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.conn, h.client = conn, authv3.NewAuthorizationClient(conn)
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	h.conn.Close()
	h.cancel()
	<-h.done
	h.assertNoSecretsLogged()
}

func (h *harness) writePolicy(name, text string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(text), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// waitReady waits until /readyz says ready (the JWKS loaded).
func (h *harness) waitReady() {
	h.t.Helper()
	eventually(h.t, 5*time.Second, func() bool { return h.readyz() == http.StatusOK })
}

func (h *harness) readyz() int {
	resp, err := http.Get("http://" + h.srv.HTTPAddr() + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// check sends req the way Envoy does and fails the test on a gRPC error:
// tokenwise must always answer with a CheckResponse.
func (h *harness) check(req *authv3.CheckRequest) *authv3.CheckResponse {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := h.client.Check(ctx, req)
	if err != nil {
		h.t.Fatalf("Check returned a gRPC error (Envoy's failure_mode_allow could turn it into an allow): %v", err)
	}
	return resp
}

// bearer returns the Authorization header for token.
func bearer(token string) map[string]string {
	return map[string]string{"authorization": "Bearer " + token}
}

// envoyRequest builds a CheckRequest as Envoy's ext_authz filter does:
// lowercased names, pseudo-headers, and repeated headers joined with ",".
func envoyRequest(method, path string, headers map[string]string) *authv3.CheckRequest {
	all := map[string]string{":authority": "shop.example.com", ":method": method, ":path": path, ":scheme": "http", "x-request-id": "req-1"}
	for k, v := range headers {
		all[strings.ToLower(k)] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1234", Method: method, Path: path, Host: "shop.example.com", Scheme: "http", Protocol: "HTTP/1.1", Headers: all,
		}},
	}}
}

// rawHeaderRequest is the same request as Envoy sends it with
// encode_raw_headers: true: header_map entries with raw_value bytes, one per occurrence.
func rawHeaderRequest(method, path string, pairs ...string) *authv3.CheckRequest {
	req := envoyRequest(method, path, nil)
	http := req.Attributes.Request.Http
	hm := &corev3.HeaderMap{}
	for k, v := range http.Headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: pairs[i], RawValue: []byte(pairs[i+1])})
	}
	http.Headers, http.HeaderMap = nil, hm
	return req
}

// assertNoSecretsLogged fails the test when any log line carries a token
// segment or a bearer credential.
func (h *harness) assertNoSecretsLogged() {
	logs := h.logs.String()
	for _, marker := range []string{"eyJ", "Bearer ", "bearer "} {
		if strings.Contains(logs, marker) {
			h.t.Errorf("the log carries %q:\n%s", marker, logs)
		}
	}
}

func eventually(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
