package answer

import (
	"slices"
	"testing"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
)

func TestWithResourceMetadata(t *testing.T) {
	const url = "https://api.test/.well-known/oauth-protected-resource"
	invalid := InvalidToken("token has expired")
	before := slices.Clone(invalid.ResponseHeaders)
	_, headers, _ := denied(t, WithResourceMetadata(invalid, url))
	want := `Bearer realm="tokenwise", error="invalid_token", error_description="token has expired", resource_metadata="` + url + `"`
	if headers["www-authenticate"] != want {
		t.Errorf("challenge %q\nwant      %q", headers["www-authenticate"], want)
	}
	if !slices.Equal(invalid.ResponseHeaders, before) {
		t.Error("the original answer's headers were edited in place")
	}
	// Only 401s point at the metadata.
	forbidden := Denied(policy.Decision{Reason: "no"}, true)
	if after := WithResourceMetadata(forbidden, url); !slices.Equal(after.ResponseHeaders, forbidden.ResponseHeaders) {
		t.Error("a 403 must not change")
	}
	allow := Allow(policy.Decision{Allowed: true, ResponseHeadersToAdd: []policy.Header{{Name: "www-authenticate", Value: "x"}}}, Upstream{})
	if after := WithResourceMetadata(allow, url); !slices.Equal(after.ResponseHeaders, allow.ResponseHeaders) {
		t.Error("an allow must not change")
	}
}

func TestDocument(t *testing.T) {
	a := Document(`{"resource":"https://api.test/"}`)
	if a.Allowed || a.Status != 200 || a.Body != `{"resource":"https://api.test/"}` {
		t.Fatalf("%+v", a)
	}
	if h := a.ResponseHeaders; !slices.Equal(h, []reply.Header{{Name: "content-type", Value: "application/json", Append: false}}) {
		t.Errorf("headers %v", h)
	}
}
