package source

import (
	"errors"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/config"
)

// FuzzFind feeds Find arbitrary Authorization, Cookie and path values, in
// both of Envoy's header shapes. Find must never panic, an error must wrap
// ErrInvalidRequest, and a token it returns must be a b64token or cookie or
// query value taken from the request, never something it made up.
func FuzzFind(f *testing.F) {
	f.Add("Bearer abc.def.ghi", "", "/", false)
	f.Add("bearer  a.b.c", "session=x.y.z", "/p?access_token=q.r.s", true)
	f.Add("Bearer a, Bearer b", "session=a; session=b", "/?access_token=%zz&access_token=t", false)
	f.Add("Basic dXNlcjpwYXNz", "a=b, session=c", "/?;access_token=x", true)
	f.Add("Bearer ", "session=", "/?access_token=", false)
	f.Add("Bearer a\x00b", "session=\xff\xfe", "/\xff?access_token=\xff", true)
	finder := New(config.Token{Header: "authorization", Cookie: "session", QueryParameter: "access_token"})
	f.Fuzz(func(t *testing.T, authz, cookie, path string, raw bool) {
		req := toRequest(fuzzRequest(authz, cookie, path, raw))
		tok, err := finder.Find(req)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			if tok != "" {
				t.Fatal("a token returned with an error")
			}
			return
		}
		if tok == "" {
			return
		}
		if !strings.Contains(authz, tok) && !strings.Contains(cookie, tok) && !strings.Contains(path, tok) && !fromQuery(path, tok) {
			t.Fatalf("token %q is in none of the inputs", tok)
		}
		redacted := finder.RedactPath(path)
		if fromQuery(path, tok) && !strings.Contains(authz, tok) && !strings.Contains(cookie, tok) && strings.Contains(redacted, "access_token="+tok) {
			t.Fatalf("RedactPath(%q) = %q keeps the query token", path, redacted)
		}
	})
}

// fromQuery reports whether tok is the (unescaped) access_token in path.
func fromQuery(path, tok string) bool {
	for _, v := range queryTokens(path, "access_token") {
		if v == tok {
			return true
		}
	}
	return false
}

// fuzzRequest builds a CheckRequest whose headers are in the headers map, or in
// header_map with raw values when raw is set.
func fuzzRequest(authz, cookie, path string, raw bool) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Path: path}
	if raw {
		h.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "Authorization", RawValue: []byte(authz)},
			{Key: "cookie", RawValue: []byte(cookie)},
		}}
	} else {
		h.Headers = map[string]string{"authorization": authz, "cookie": cookie}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}
