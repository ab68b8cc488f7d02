package source

import (
	"errors"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/grpcfront"
	"github.com/tokenwise/tokenwise/authz/request"
)

const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"

func checkReq(path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Headers: headers},
	}}}
}

func rawRequest(pairs ...string) *authv3.CheckRequest {
	req := checkReq("/", nil)
	hm := &corev3.HeaderMap{}
	for i := 0; i < len(pairs); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: pairs[i], RawValue: []byte(pairs[i+1])})
	}
	req.Attributes.Request.Http.HeaderMap = hm
	return req
}

func TestFind(t *testing.T) {
	all := New(config.Token{Header: "authorization", Cookie: "session", QueryParameter: "access_token"})
	headerOnly := New(config.Token{Header: "authorization"})
	cases := []struct {
		name    string
		finder  *Finder
		req     *authv3.CheckRequest
		want    string
		invalid bool
	}{
		{"bearer", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer " + jwt}), jwt, false},
		{"scheme case-insensitive", headerOnly, checkReq("/", map[string]string{"authorization": "bEaReR " + jwt}), jwt, false},
		{"extra spaces", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer   " + jwt + " "}), jwt, false},
		{"no header", headerOnly, checkReq("/", map[string]string{"x": "y"}), "", false},
		{"other scheme", headerOnly, checkReq("/", map[string]string{"authorization": "Basic dTpw"}), "", false},
		{"empty bearer", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer "}), "", true},
		{"not a b64token", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer a b"}), "", true},
		{"two joined by envoy", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer " + jwt + ",Bearer " + jwt}), "", true},
		{"bearer joined with basic", headerOnly, checkReq("/", map[string]string{"authorization": "Basic dTpw, Bearer " + jwt}), "", true},
		{"header_map", headerOnly, rawRequest("authorization", "Bearer "+jwt), jwt, false},
		{"header_map repeated", headerOnly, rawRequest("authorization", "Bearer "+jwt, "Authorization", "Bearer "+jwt), "", true},
		{"header_map other header", headerOnly, rawRequest("x-a", "Bearer "+jwt), "", false},
		{"cookie", all, checkReq("/", map[string]string{"cookie": "a=b; session=" + jwt}), jwt, false},
		{"cookie twice", all, checkReq("/", map[string]string{"cookie": "session=" + jwt + "; session=" + jwt}), "", true},
		{"query", all, checkReq("/x?access_token="+jwt+"&a=1", nil), jwt, false},
		{"query off by default", headerOnly, checkReq("/x?access_token="+jwt, nil), "", false},
		{"header plus query", all, checkReq("/x?access_token="+jwt, map[string]string{"authorization": "Bearer " + jwt}), "", true},
		{"header plus cookie", all, checkReq("/x", map[string]string{"authorization": "Bearer " + jwt, "cookie": "session=" + jwt}), "", true},
		{"nil request", headerOnly, &authv3.CheckRequest{}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.finder.Find(toRequest(c.req))
			if c.invalid {
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("err = %v, want invalid request", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Find = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestRedactPath(t *testing.T) {
	f := New(config.Token{Header: "authorization", QueryParameter: "access_token"})
	got := f.RedactPath("/a?x=1&access_token=" + jwt + "&y=2")
	if got != "/a?x=1&access_token=REDACTED&y=2" {
		t.Errorf("RedactPath = %q", got)
	}
	if got := New(config.Token{Header: "authorization"}).RedactPath("/a?access_token=x"); got != "/a?access_token=x" {
		t.Errorf("redacted without a query source: %q", got)
	}
}

// toRequest is what the gRPC front end makes of a CheckRequest; one without
// HTTP attributes becomes an empty request.
func toRequest(check *authv3.CheckRequest) *request.Request {
	req, err := grpcfront.Request(check)
	if err != nil {
		return &request.Request{Headers: map[string]string{}}
	}
	return req
}
