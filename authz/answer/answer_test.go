package answer

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
)

func denied(t *testing.T, a reply.Reply) (status int, headers map[string]string, body map[string]string) {
	t.Helper()
	if a.Allowed || a.Status == 0 {
		t.Fatalf("not a deny: %+v", a)
	}
	headers = map[string]string{}
	for _, h := range a.ResponseHeaders {
		headers[h.Name] = h.Value
	}
	_ = json.Unmarshal([]byte(a.Body), &body)
	return a.Status, headers, body
}

func TestAnswersTable(t *testing.T) {
	cases := []struct {
		name   string
		answer reply.Reply
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
			status, headers, body := denied(t, c.answer)
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
	if body := Denied(d, true).Body; body != "slow down" {
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
		Allowed:                 true,
		Headers:                 []policy.Header{{Name: "x-user-id", Value: "from-policy"}, {Name: "X-Tier", Value: "gold"}, {Name: "x-tier", Value: "vip"}},
		RequestHeadersToRemove:  []string{"x-debug", "X-Claim"},
		ResponseHeadersToAdd:    []policy.Header{{Name: "x-served-by", Value: "tokenwise"}},
		QueryParametersToSet:    []policy.Header{{Name: "tenant", Value: "t1"}},
		QueryParametersToRemove: []string{"debug"},
		DynamicMetadata:         map[string]any{"user": "alice", "n": 2.0},
	}
	a := Allow(d, Upstream{Set: []policy.Header{{Name: "x-user-id", Value: "alice"}}, Remove: []string{"x-claim", "authorization", "x-user-id"}, RemoveQuery: []string{"access_token", "debug"}})
	if !a.Allowed || a.Status != 0 || a.Error != "" || a.Body != "" {
		t.Fatalf("not a plain allow: %+v", a)
	}
	want := []reply.Header{{Name: "x-tier", Value: "gold", Append: false}, {Name: "x-tier", Value: "vip", Append: true}, {Name: "x-user-id", Value: "alice", Append: false}}
	if !slices.Equal(a.RequestHeaders, want) {
		t.Errorf("request headers = %v, want %v (a second value appends; the claim's value replaces the policy's)", a.RequestHeaders, want)
	}
	if r := a.RemoveRequestHeaders; !slices.Equal(r, []string{"x-debug", "x-claim", "authorization"}) {
		t.Errorf("removals = %v (lowercase, once; x-user-id must not be removed: it is set)", r)
	}
	if !slices.Equal(a.ResponseHeaders, []reply.Header{{Name: "x-served-by", Value: "tokenwise", Append: true}}) {
		t.Errorf("response headers = %v: response_headers_to_add appends", a.ResponseHeaders)
	}
	if !slices.Equal(a.SetQuery, []reply.Param{{Name: "tenant", Value: "t1"}}) || !slices.Equal(a.RemoveQuery, []string{"debug", "access_token"}) {
		t.Errorf("query: set %v remove %v", a.SetQuery, a.RemoveQuery)
	}
	if a.Metadata["user"] != "alice" {
		t.Errorf("metadata = %v", a.Metadata)
	}
}

// TestDenyErrorAndDescription: a deny carries its OAuth error and
// description beside the body, for a front end to report (gRPC's status).
func TestDenyErrorAndDescription(t *testing.T) {
	for _, c := range []struct {
		a                reply.Reply
		err, description string
	}{
		{InvalidToken("token is expired"), reply.ErrInvalidToken, "token is expired"},
		{Denied(policy.Decision{}, false), reply.ErrUnauthorized, "a bearer token is required"},
		{Denied(policy.Decision{HTTPStatus: 402, Body: "pay", Reason: "unpaid"}, true), reply.ErrAccessDenied, "unpaid"},
		{PayloadTooLarge("too big"), reply.ErrInvalidRequest, "too big"},
		{Document("{}"), "", "answered by tokenwise"},
	} {
		if c.a.Allowed || c.a.Error != c.err || c.a.Description != c.description {
			t.Errorf("%+v: want error %q description %q", c.a, c.err, c.description)
		}
	}
}
