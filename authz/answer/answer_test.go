package answer

import (
	"encoding/json"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/tokenwise/tokenwise/authz/policy"
)

func denied(t *testing.T, resp *authv3.CheckResponse) (status int, headers map[string]string, body map[string]string) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if d == nil || resp.GetStatus().GetCode() == int32(codes.OK) {
		t.Fatalf("not a deny: %v", resp)
	}
	headers = map[string]string{}
	for _, h := range d.GetHeaders() {
		headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	_ = json.Unmarshal([]byte(d.GetBody()), &body)
	return int(d.GetStatus().GetCode()), headers, body
}

func TestAnswersTable(t *testing.T) {
	cases := []struct {
		name   string
		resp   *authv3.CheckResponse
		status int
		www    string
		error  string
	}{
		{"no token, policy denies", Denied(policy.Decision{}, false), 401, `Bearer realm="tokenwise"`, "unauthorized"},
		{"invalid token", InvalidToken("token is expired"), 401, `Bearer realm="tokenwise", error="invalid_token", error_description="token is expired"`, "invalid_token"},
		{"two tokens", InvalidRequest("the request carries more than one token"), 400, `Bearer realm="tokenwise", error="invalid_request", error_description="the request carries more than one token"`, "invalid_request"},
		{"policy denies a valid token", Denied(policy.Decision{Reason: "needs orders:write"}, true), 403, `Bearer realm="tokenwise", error="insufficient_scope", error_description="needs orders:write"`, "insufficient_scope"},
		{"policy's own 422 with a token", Denied(policy.Decision{HTTPStatus: 422, Reason: "amount too large"}, true), 422, "", "access_denied"},
		{"policy's own 404 without a token", Denied(policy.Decision{HTTPStatus: 404}, false), 404, "", "access_denied"},
		{"policy's own 403 without a token", Denied(policy.Decision{HTTPStatus: 403}, false), 403, "", "access_denied"},
		{"policy's 403 with a token", Denied(policy.Decision{HTTPStatus: 403, Reason: "no"}, true), 403, `Bearer realm="tokenwise", error="insufficient_scope", error_description="no"`, "insufficient_scope"},
		{"policy's 401 with a token", Denied(policy.Decision{HTTPStatus: 401, Reason: "sign in again"}, true), 401, `Bearer realm="tokenwise"`, "unauthorized"},
		{"store down", Unavailable("the use-limit store is unavailable"), 503, "", "temporarily_unavailable"},
		{"policy error", InternalError("policy evaluation failed"), 500, "", "server_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, headers, body := denied(t, c.resp)
			if status != c.status {
				t.Errorf("status = %d, want %d", status, c.status)
			}
			if headers["www-authenticate"] != c.www {
				t.Errorf("www-authenticate = %q, want %q", headers["www-authenticate"], c.www)
			}
			if headers["content-type"] != "application/json" || body["error"] != c.error {
				t.Errorf("body = %v, headers = %v", body, headers)
			}
		})
	}
}

func TestDeniedPolicyOverrides(t *testing.T) {
	d := policy.Decision{HTTPStatus: 429, Body: "slow down", Headers: []policy.Header{{Name: "retry-after", Value: "5"}}}
	status, headers, _ := denied(t, Denied(d, true))
	if status != 429 || headers["retry-after"] != "5" || headers["content-type"] != "" {
		t.Errorf("status %d headers %v", status, headers)
	}
	if body := Denied(d, true).GetDeniedResponse().GetBody(); body != "slow down" {
		t.Errorf("body = %q", body)
	}
	if _, headers, _ := denied(t, Denied(policy.Decision{HTTPStatus: 422, Headers: []policy.Header{{Name: "www-authenticate", Value: "Custom"}}}, true)); headers["www-authenticate"] != "Custom" {
		t.Errorf("a policy's own challenge on a 422 was dropped: %v", headers)
	}
	step := policy.Decision{Headers: []policy.Header{{Name: "WWW-Authenticate", Value: `Bearer realm="tokenwise", error="insufficient_scope", scope="orders:write"`}}}
	_, headers, _ = denied(t, Denied(step, true))
	if headers["www-authenticate"] != step.Headers[0].Value {
		t.Errorf("policy's challenge replaced: %q", headers["www-authenticate"])
	}
}

func TestDescriptionCannotBreakHeader(t *testing.T) {
	_, headers, _ := denied(t, Denied(policy.Decision{Reason: "bad \"quote\"\r\nx-injected: 1 \\"}, true))
	www := headers["www-authenticate"]
	want := `Bearer realm="tokenwise", error="insufficient_scope", error_description="bad 'quote'''x-injected: 1 '"`
	if www != want {
		t.Errorf("www-authenticate = %q, want %q", www, want)
	}
}

func TestAllowOverwritesAndRemoves(t *testing.T) {
	d := policy.Decision{
		Allowed:                true,
		Headers:                []policy.Header{{Name: "x-user-id", Value: "from-policy"}, {Name: "x-tier", Value: "gold"}, {Name: "x-tier", Value: "vip"}},
		RequestHeadersToRemove: []string{"x-debug", "x-claim"},
		ResponseHeadersToAdd:   []policy.Header{{Name: "x-served-by", Value: "tokenwise"}},
		QueryParametersToSet:   []policy.Header{{Name: "tenant", Value: "t1"}},
		DynamicMetadata:        map[string]any{"user": "alice", "n": 2.0},
	}
	resp := Allow(d, Upstream{Set: []policy.Header{{Name: "x-user-id", Value: "alice"}}, Remove: []string{"x-claim", "authorization", "x-user-id"}})
	if resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("status = %v", resp.GetStatus())
	}
	ok := resp.GetOkResponse()
	var got []string
	for _, h := range ok.GetHeaders() {
		if h.GetAppend() == nil {
			t.Fatalf("append unset on %s: Envoy would append beside the client's header", h.GetHeader().GetKey())
		}
		got = append(got, h.GetHeader().GetKey()+"="+h.GetHeader().GetValue()+"/"+boolString(h.GetAppend().GetValue()))
	}
	want := []string{"x-tier=gold/false", "x-tier=vip/true", "x-user-id=alice/false"}
	if len(got) != len(want) {
		t.Fatalf("headers = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("headers = %v, want %v", got, want)
		}
	}
	if r := ok.GetHeadersToRemove(); len(r) != 3 || r[0] != "x-debug" || r[1] != "x-claim" || r[2] != "authorization" {
		t.Errorf("headers_to_remove = %v (x-user-id must not be removed: it is set)", r)
	}
	if a := ok.GetResponseHeadersToAdd(); len(a) != 1 || !a[0].GetAppend().GetValue() {
		t.Errorf("response_headers_to_add = %v", a)
	}
	if q := ok.GetQueryParametersToSet(); len(q) != 1 || q[0].GetKey() != "tenant" {
		t.Errorf("query = %v", q)
	}
	if resp.GetDynamicMetadata().GetFields()["user"].GetStringValue() != "alice" {
		t.Errorf("metadata = %v", resp.GetDynamicMetadata())
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
