package answer

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
)

// FuzzAnswer maps arbitrary decisions and descriptions to answers. The
// invariants: no panic; every deny is not allowed and has a status (the
// gRPC front end's FuzzResponse checks the same answers render as a non-OK
// status with a denied response); every allow is allowed with no deny
// parts; no header value that tokenwise writes (WWW-Authenticate,
// content-type) holds CR, LF or NUL; and the default JSON body is valid
// JSON. Policy headers are fuzzed only with values the policy package lets
// through (it refuses CR, LF and NUL).
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
			a := Allow(d, Upstream{Set: []policy.Header{{Name: "x-user", Value: "alice"}}, Remove: []string{"authorization"}})
			if !a.Allowed || a.Status != 0 || a.Body != "" || a.Error != "" {
				t.Fatalf("allow is not a plain allow: %+v", a)
			}
			return
		}
		for name, a := range map[string]reply.Reply{
			"Denied":          Denied(d, hadToken),
			"InvalidToken":    InvalidToken(description),
			"InvalidRequest":  InvalidRequest(description),
			"Unavailable":     Unavailable(description),
			"InternalError":   InternalError(description),
			"Denied no token": Denied(policy.Decision{Reason: reason}, false),
		} {
			checkDeny(t, name, a, d)
		}
	})
}

func checkDeny(t *testing.T, name string, a reply.Reply, d policy.Decision) {
	t.Helper()
	if a.Allowed || a.Status == 0 || a.RequestHeaders != nil || a.RemoveRequestHeaders != nil || a.SetQuery != nil || a.RemoveQuery != nil {
		t.Fatalf("%s: deny is allowed, has no status or carries an allow's rewrites: %+v", name, a)
	}
	for _, h := range a.ResponseHeaders {
		k, v := h.Name, h.Value
		if strings.ContainsAny(k, "\r\n\x00") || strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("%s: header %q: %q has a control character", name, k, v)
		}
		if k == "www-authenticate" && strings.HasPrefix(v, "Bearer ") && strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			t.Fatalf("%s: challenge %q is not printable ASCII", name, v)
		}
	}
	if d.Body == "" || name != "Denied" {
		var body map[string]string
		if strings.HasPrefix(a.Body, "{") && json.Unmarshal([]byte(a.Body), &body) != nil {
			t.Fatalf("%s: default body %q is not JSON", name, a.Body)
		}
	}
}
