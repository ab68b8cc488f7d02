package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// benchPolicy matches the `tokenwise bench` policy: an object decision with
// headers for orders, a public route, and a deny for everything else.
const benchPolicy = `package envoy.authz

default allow := {"allowed": false, "http_status": 403, "reason": "no rule allows this request"}

allow := {"allowed": true, "headers": {"x-scopes": concat(" ", input.token.scopes), "x-tenant": "acme"}} if {
	input.parsed_path[0] == "orders"
	input.attributes.request.http.method == "GET"
	"orders:read" in input.token.scopes
}

allow := {"allowed": true} if input.parsed_path[0] == "public"
`

// benchServer is a whole tokenwise (real verifier on an httptest JWKS, real
// policy, memory store) whose Authorizer is driven without gRPC.
func benchServer(b *testing.B) (*Authorizer, *verifytest.Issuer) {
	b.Helper()
	iss := verifytest.NewIssuer(b)
	cfg := benchConfig(iss)
	cfg.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	return startBenchServer(b, cfg, benchPolicy), iss
}

// benchConfig is the default configuration trusting iss as "corp" for the
// orders-api audience, with the policy in startBenchServer's file system.
func benchConfig(iss *verifytest.Issuer) *config.Config {
	cfg := config.Default()
	is := iss.Config("corp")
	is.Audiences = []string{"orders-api"}
	cfg.Issuers = []config.Issuer{is}
	cfg.Policy.Paths = []string{"."}
	return cfg
}

// startBenchServer validates cfg, starts a tokenwise on it with policy as
// its only module and waits until its JWKS are loaded.
func startBenchServer(b *testing.B, cfg *config.Config, policy string) *Authorizer {
	b.Helper()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	// The decision log is encoded as in production but not written anywhere.
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	fsys := fstest.MapFS{"bench.rego": {Data: []byte(policy)}}
	srv, err := New(context.Background(), cfg, Options{Logger: logger, PolicyFS: fsys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	deadline := time.Now().Add(10 * time.Second)
	for !srv.Ready() {
		if time.Now().After(deadline) {
			b.Fatal("the JWKS did not load")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return srv.Authorizer()
}

// benchCheckRequest is a CheckRequest as Envoy builds it: lowercase headers
// with the pseudo-headers, peers, request time.
func benchCheckRequest(path, token string) *authv3.CheckRequest {
	headers := map[string]string{
		":authority": "api.example.com", ":method": "GET", ":path": path, ":scheme": "https",
		"accept": "application/json", "accept-encoding": "gzip, deflate, br", "accept-language": "en-GB,en;q=0.9",
		"user-agent": "Mozilla/5.0 (X11; Linux x86_64)", "x-forwarded-for": "203.0.113.7",
		"x-forwarded-proto": "https", "x-request-id": "5f0c7b8e-3a3c-4c9e-9b1a-1b2c3d4e5f60",
	}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("203.0.113.7", 40000)},
		Destination: &authv3.AttributeContext_Peer{Address: addr("10.0.0.5", 8443)},
		Request: &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: &authv3.AttributeContext_HttpRequest{
			Id: "1", Method: "GET", Path: path, Host: "api.example.com", Scheme: "https", Protocol: "HTTP/1.1", Headers: headers,
		}},
	}}
}

func benchToken(iss *verifytest.Issuer) string {
	return iss.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": "j1",
		"scope": "orders:read payments:write", "exp": time.Now().Add(time.Hour).Unix()})
}

// runCheck calls Check until the benchmark ends, asserting the answer's status.
func runCheck(b *testing.B, a *Authorizer, req *authv3.CheckRequest, allowed bool) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := a.Check(ctx, req)
		if err != nil || (resp.GetOkResponse() != nil) != allowed {
			b.Fatalf("Check = %v, %v", resp, err)
		}
	}
}

// BenchmarkCheck is the whole pipeline for one reused RS256 token (source,
// verify, policy with an object decision and headers, answer, decision log
// and metrics), without gRPC.
func BenchmarkCheck(b *testing.B) {
	a, iss := benchServer(b)
	runCheck(b, a, benchCheckRequest("/orders/42?view=full", benchToken(iss)), true)
}

// BenchmarkCheckDeny is the pipeline when the policy denies a valid token.
func BenchmarkCheckDeny(b *testing.B) {
	a, iss := benchServer(b)
	runCheck(b, a, benchCheckRequest("/admin/users", benchToken(iss)), false)
}

// BenchmarkCheckAnonymous is the pipeline without a token on a public route.
func BenchmarkCheckAnonymous(b *testing.B) {
	a, _ := benchServer(b)
	runCheck(b, a, benchCheckRequest("/public/status", ""), true)
}

// BenchmarkCheckParallel is BenchmarkCheck from GOMAXPROCS goroutines.
func BenchmarkCheckParallel(b *testing.B) {
	a, iss := benchServer(b)
	req := benchCheckRequest("/orders/42?view=full", benchToken(iss))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if resp, err := a.Check(ctx, req); err != nil || resp.GetOkResponse() == nil {
				b.Errorf("Check = %v, %v", resp, err)
				return
			}
		}
	})
}

// BenchmarkNewID is the decision id every Check logs.
func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = newID()
	}
}
