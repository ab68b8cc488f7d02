package answer

import (
	"encoding/json"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/tokenwise/tokenwise/authz/policy"
)

// FuzzAnswer maps arbitrary decisions and descriptions to responses. The
// invariants: no panic; every deny has a non-OK gRPC status and a denied
// HTTP response (never an OK one); every allow is OK; no header value that
// tokenwise writes (WWW-Authenticate, content-type) holds CR, LF or NUL; and
// the default JSON body is valid JSON. Policy headers are fuzzed only with
// values the policy package lets through (it refuses CR, LF and NUL).
func FuzzAnswer(f *testing.F) {
	f.Add(true, "reason", "x-h", "v", "", 0, false, "description")
	f.Add(false, "needs \"orders\"\r\n\\", "www-authenticate", "Basic", "", 418, true, "bad\r\nheader")
	f.Add(false, "\xff\xfe\x00", "content-type", "text/plain", "body", 200, true, "\x7f")
	f.Add(false, "", "", "", "", 599, false, "")
	f.Fuzz(func(t *testing.T, allowed bool, reason, hName, hValue, body string, status int, hadToken bool, description string) {
		d := policy.Decision{Allowed: allowed, Reason: reason, Body: body}
		if hName != "" && !strings.ContainsAny(hName, "\r\n\x00 ") && !strings.ContainsAny(hValue, "\r\n\x00") {
			d.Headers = []policy.Header{{Name: strings.ToLower(hName), Value: hValue}}
		}
		if status >= 100 && status <= 599 {
			d.HTTPStatus = status
		}
		if allowed {
			resp := Allow(d, Upstream{Set: []policy.Header{{Name: "x-user", Value: "alice"}}, Remove: []string{"authorization"}})
			if resp.GetStatus().GetCode() != int32(codes.OK) || resp.GetOkResponse() == nil || resp.GetDeniedResponse() != nil {
				t.Fatalf("allow is not OK: %v", resp)
			}
			return
		}
		for name, resp := range map[string]*authv3.CheckResponse{
			"Denied":          Denied(d, hadToken),
			"InvalidToken":    InvalidToken(description),
			"InvalidRequest":  InvalidRequest(description),
			"Unavailable":     Unavailable(description),
			"InternalError":   InternalError(description),
			"Denied no token": Denied(policy.Decision{Reason: reason}, false),
		} {
			checkDeny(t, name, resp, d)
		}
	})
}

func checkDeny(t *testing.T, name string, resp *authv3.CheckResponse, d policy.Decision) {
	t.Helper()
	if resp.GetStatus().GetCode() == int32(codes.OK) || resp.GetOkResponse() != nil || resp.GetDeniedResponse() == nil {
		t.Fatalf("%s: deny has OK status or no denied response: %v", name, resp)
	}
	dr := resp.GetDeniedResponse()
	for _, h := range dr.GetHeaders() {
		k, v := h.GetHeader().GetKey(), h.GetHeader().GetValue()
		if strings.ContainsAny(k, "\r\n\x00") || strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("%s: header %q: %q has a control character", name, k, v)
		}
		if k == "www-authenticate" && strings.HasPrefix(v, "Bearer ") && strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			t.Fatalf("%s: challenge %q is not printable ASCII", name, v)
		}
	}
	if d.Body == "" || name != "Denied" {
		var body map[string]string
		if strings.HasPrefix(dr.GetBody(), "{") && json.Unmarshal([]byte(dr.GetBody()), &body) != nil {
			t.Fatalf("%s: default body %q is not JSON", name, dr.GetBody())
		}
	}
}
