package answer

import (
	"testing"

	"github.com/tokenwise/tokenwise/authz/policy"
)

func TestWithResourceMetadata(t *testing.T) {
	const url = "https://api.test/.well-known/oauth-protected-resource"
	resp := WithResourceMetadata(InvalidToken("token has expired"), url)
	got := resp.GetDeniedResponse().GetHeaders()
	var www string
	for _, h := range got {
		if h.GetHeader().GetKey() == "www-authenticate" {
			www = h.GetHeader().GetValue()
		}
	}
	want := `Bearer realm="tokenwise", error="invalid_token", error_description="token has expired", resource_metadata="` + url + `"`
	if www != want {
		t.Errorf("challenge %q\nwant      %q", www, want)
	}
	// Only 401s point at the metadata.
	forbidden := Denied(policy.Decision{Reason: "no"}, true)
	before := forbidden.GetDeniedResponse().GetHeaders()[len(forbidden.GetDeniedResponse().GetHeaders())-1].GetHeader().GetValue()
	after := WithResourceMetadata(forbidden, url).GetDeniedResponse().GetHeaders()
	if after[len(after)-1].GetHeader().GetValue() != before {
		t.Error("a 403 must not change")
	}
	if allow := Allow(policy.Decision{Allowed: true}, Upstream{}); WithResourceMetadata(allow, url) != allow {
		t.Error("an allow must not change")
	}
}

func TestDocument(t *testing.T) {
	resp := Document(`{"resource":"https://api.test/"}`)
	d := resp.GetDeniedResponse()
	if resp.GetStatus().GetCode() == 0 || d.GetStatus().GetCode() != 200 || d.GetBody() != `{"resource":"https://api.test/"}` {
		t.Fatalf("%v", resp)
	}
	if h := d.GetHeaders(); len(h) != 1 || h[0].GetHeader().GetKey() != "content-type" || h[0].GetHeader().GetValue() != "application/json" {
		t.Errorf("headers %v", h)
	}
}
