package httpfront

import (
	"net/http/httptest"
	"testing"

	"github.com/tokenwise/tokenwise/authz/answer"
	"github.com/tokenwise/tokenwise/authz/policy"
)

func TestWriteAllow(t *testing.T) {
	d := policy.Decision{
		Allowed:                true,
		Headers:                []policy.Header{{Name: "x-tenant", Value: "acme"}, {Name: "x-user-id", Value: "mallory"}},
		RequestHeadersToRemove: []string{"x-debug"},
		ResponseHeadersToAdd:   []policy.Header{{Name: "x-served-by", Value: "tokenwise"}},
	}
	up := answer.Upstream{Set: []policy.Header{{Name: "x-user-id", Value: "alice"}}, Remove: []string{"authorization"}}
	w := httptest.NewRecorder()
	Write(w, answer.Allow(d, up), false)
	res := w.Result()
	if res.StatusCode != 200 || w.Body.Len() != 0 {
		t.Fatalf("status %d body %q: want 200, empty", res.StatusCode, w.Body)
	}
	h := res.Header
	if got := h.Values("X-User-Id"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("x-user-id %q: the claim's value, once", got)
	}
	if h.Get("X-Tenant") != "acme" || h.Get("X-Served-By") != "tokenwise" {
		t.Errorf("headers %v", h)
	}
	if v, ok := h["X-Debug"]; !ok || len(v) != 1 || v[0] != "" {
		t.Errorf("a removed header is sent empty, got %q", v)
	}
	if h.Get(HeadersToRemove) != "x-debug,authorization" {
		t.Errorf("%s: %q", HeadersToRemove, h.Get(HeadersToRemove))
	}
}

func TestWriteDeny(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, answer.InvalidToken("token has expired"), false)
	if w.Code != 401 || w.Header().Get("Www-Authenticate") != `Bearer realm="tokenwise", error="invalid_token", error_description="token has expired"` {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if w.Header().Get("Content-Type") != "application/json" || w.Body.String() != `{"error":"invalid_token","error_description":"token has expired"}` {
		t.Errorf("body %q", w.Body)
	}

	w = httptest.NewRecorder()
	Write(w, answer.Denied(policy.Decision{HTTPStatus: 402, Body: "pay first", Headers: []policy.Header{{Name: "x-reason", Value: "unpaid"}}}, true), false)
	if w.Code != 402 || w.Body.String() != "pay first" || w.Header().Get("X-Reason") != "unpaid" {
		t.Errorf("policy status, body and headers: %d %q %v", w.Code, w.Body, w.Header())
	}
}

// TestWriteDenyNeverLooksAllowed: every proxy reads a 2xx as allow, so a
// policy's deny with status 200 must not be written as one.
func TestWriteDenyNeverLooksAllowed(t *testing.T) {
	for _, status := range []int{200, 204, 0, 99, 600} {
		w := httptest.NewRecorder()
		Write(w, answer.Denied(policy.Decision{HTTPStatus: status}, true), false)
		if w.Code != 403 {
			t.Errorf("deny with status %d written as %d, want 403", status, w.Code)
		}
	}
	w := httptest.NewRecorder()
	Write(w, answer.Document(`{"resource":"https://api.test/"}`), true)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != `{"resource":"https://api.test/"}` {
		t.Errorf("document: %d %v %q", w.Code, w.Header(), w.Body)
	}
}
