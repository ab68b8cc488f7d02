package e2e

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
)

// tokenOnly allows a request only with a verified token for alice, and reads
// the parsed body, so a hostile request has every stage to get through.
const tokenOnly = `package envoy.authz

default allow := false

allow if {
	input.token.claims.sub == "alice"
	not input.parsed_body.deny
}
`

// Hostile requests through the real gRPC server: each must get a deny (a
// CheckResponse with a non-OK status and a denied HTTP response, never a
// gRPC error that failure_mode_allow could turn into an allow), and the
// server must go on answering good requests correctly afterwards.
func TestHostileRequestsAreDenied(t *testing.T) {
	h := startPolicy(t, tokenOnly)
	h.waitReady()
	good := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api"})
	wantAllow(t, h, envoyRequest("GET", "/x", bearer(good)))

	garbage := make([]byte, 64<<10)
	_, _ = rand.Read(garbage)
	hugeToken := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 1<<20/20) // 1 MiB of b64token
	manyHeaders := map[string]string{}
	for n := range 10000 {
		manyHeaders[fmt.Sprintf("x-h-%d", n)] = "v"
	}
	deepBody := func(depth int) *authv3.CheckRequest {
		req := envoyRequest("POST", "/x", map[string]string{"content-type": "application/json"})
		req.Attributes.Request.Http.Body = strings.Repeat("[", depth) + strings.Repeat("]", depth)
		return req
	}
	binaryBody := envoyRequest("POST", "/x", map[string]string{"content-type": "application/json"})
	binaryBody.Attributes.Request.Http.RawBody = garbage
	cases := map[string]*authv3.CheckRequest{
		"1 MiB token":                             envoyRequest("GET", "/x", bearer(hugeToken)),
		"1 MiB token in header_map":               rawHeaderRequest("GET", "/x", "authorization", "Bearer "+hugeToken),
		"huge header value":                       envoyRequest("GET", "/x", map[string]string{"x-big": strings.Repeat("a", 2<<20)}),
		"10k headers":                             envoyRequest("GET", "/x", manyHeaders),
		"huge path":                               envoyRequest("GET", "/"+strings.Repeat("a/", 512<<10), nil),
		"huge query":                              envoyRequest("GET", "/x?"+strings.Repeat("a=1&", 256<<10), nil),
		"deep JSON body (100k)":                   deepBody(100000),
		"deep JSON body (5k)":                     deepBody(5000),
		"JSON body over the cap":                  deepBody(1 << 20),
		"binary JSON body":                        binaryBody,
		"binary Authorization":                    rawHeaderRequest("GET", "/x", "authorization", string(garbage[:4096])),
		"binary bearer":                           rawHeaderRequest("GET", "/x", "authorization", "Bearer "+string(garbage[:4096])),
		"invalid UTF-8 header_map":                rawHeaderRequest("GET", "/x", "x-name", "\xff\xfe\xc3\x28", "cookie", "session=\xff"),
		"NUL and CR in header_map":                rawHeaderRequest("GET", "/x", "x-name", "a\x00b\r\nx-injected: 1"),
		"garbage token":                           envoyRequest("GET", "/x", bearer("a.b.c")),
		"token with 10k segments":                 envoyRequest("GET", "/x", bearer(strings.Repeat("a.", 10000))),
		"alg none token":                          envoyRequest("GET", "/x", bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.")),
		"bad percent escapes":                     envoyRequest("GET", "/%zz?%zz=%zz", nil),
		"no http attributes":                      {Attributes: &authv3.AttributeContext{}},
		"empty request":                           {},
		"header_map without headers":              {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{HeaderMap: &corev3.HeaderMap{}}}}},
		"valid token, hostile body":               withBody(envoyRequest("POST", "/x", bearer(good)), `{"deny":true}`),
		"duplicate body member (last wins: deny)": withBody(envoyRequest("POST", "/x", bearer(good)), `{"deny":false,"deny":true}`),
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			resp := h.check(req) // fails the test on a gRPC error
			if resp.GetStatus().GetCode() == int32(codes.OK) || resp.GetOkResponse() != nil || resp.GetDeniedResponse() == nil {
				t.Fatalf("hostile request allowed: status %v", resp.GetStatus())
			}
			if len(resp.GetStatus().GetMessage()) > 1024 || len(resp.GetDeniedResponse().GetBody()) > 4096 {
				t.Fatalf("deny echoes the request: message %d bytes, body %d bytes", len(resp.GetStatus().GetMessage()), len(resp.GetDeniedResponse().GetBody()))
			}
		})
	}
	// Still serving, still right.
	wantAllow(t, h, envoyRequest("GET", "/x", bearer(good)))
	wantAllow(t, h, deepBodyWithToken(good, 50))
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, "tokenwise_check_panics_total 0") {
		t.Errorf("hostile requests caused panics:\n%s", grepLines(metrics, "panics"))
	}
}

func withBody(req *authv3.CheckRequest, body string) *authv3.CheckRequest {
	req.Attributes.Request.Http.Headers["content-type"] = "application/json"
	req.Attributes.Request.Http.Body = body
	return req
}

func deepBodyWithToken(token string, depth int) *authv3.CheckRequest {
	return withBody(envoyRequest("POST", "/x", bearer(token)), `{"a":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}`)
}

func wantAllow(t *testing.T, h *harness, req *authv3.CheckRequest) {
	t.Helper()
	resp := h.check(req)
	if resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("a good request was denied: %v", resp.GetStatus())
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
