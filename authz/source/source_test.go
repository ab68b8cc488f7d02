package source

import (
	"errors"
	"strings"
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
	cookieOnly := New(config.Token{Cookie: "session"})
	customHeader := New(config.Token{Header: "X-Token"})
	const badRequest, badToken = "400", "401"
	cases := []struct {
		name   string
		finder *Finder
		req    *authv3.CheckRequest
		want   string
		fail   string // "", badRequest or badToken
	}{
		{"bearer", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer " + jwt}), jwt, ""},
		{"scheme case-insensitive", headerOnly, checkReq("/", map[string]string{"authorization": "bEaReR " + jwt}), jwt, ""},
		{"extra spaces", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer   " + jwt + " "}), jwt, ""},
		{"tab after the scheme", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer\t" + jwt}), jwt, ""},
		{"dpop scheme", headerOnly, checkReq("/", map[string]string{"authorization": "DPoP " + jwt}), jwt, ""},
		{"no header", headerOnly, checkReq("/", map[string]string{"x": "y"}), "", ""},
		{"other scheme", headerOnly, checkReq("/", map[string]string{"authorization": "Basic dTpw"}), "", ""},
		{"scheme prefix is another scheme", headerOnly, checkReq("/", map[string]string{"authorization": "Bearerx " + jwt}), "", ""},
		{"empty bearer", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer "}), "", badToken},
		{"bare bearer", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer"}), "", badToken},
		{"bearer and tab only", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer\t"}), "", badToken},
		{"empty dpop", headerOnly, checkReq("/", map[string]string{"authorization": "dpop  "}), "", badToken},
		{"not a b64token", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer a b"}), "", badToken},
		{"colon after the scheme", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer:" + jwt}), "", badToken},
		{"two joined by envoy", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer " + jwt + ",Bearer " + jwt}), "", badRequest},
		{"bearer joined with basic", headerOnly, checkReq("/", map[string]string{"authorization": "Basic dTpw, Bearer " + jwt}), "", badRequest},
		{"trailing comma", headerOnly, checkReq("/", map[string]string{"authorization": "Bearer " + jwt + ","}), "", badRequest},
		{"header_map", headerOnly, rawRequest("authorization", "Bearer "+jwt), jwt, ""},
		{"header_map repeated", headerOnly, rawRequest("authorization", "Bearer "+jwt, "Authorization", "Bearer "+jwt), "", badRequest},
		{"header_map basic and bearer", headerOnly, rawRequest("authorization", "Basic dTpw", "Authorization", "Bearer "+jwt), "", badRequest},
		{"header_map empty and bearer", headerOnly, rawRequest("authorization", "", "Authorization", "Bearer "+jwt), "", badRequest},
		{"header_map two basics", headerOnly, rawRequest("authorization", "Basic dTpw", "Authorization", "Basic dTpx"), "", ""},
		{"header_map other header", headerOnly, rawRequest("x-a", "Bearer "+jwt), "", ""},
		{"cookie", all, checkReq("/", map[string]string{"cookie": "a=b; session=" + jwt}), jwt, ""},
		{"cookie twice", all, checkReq("/", map[string]string{"cookie": "session=" + jwt + "; session=" + jwt}), "", badRequest},
		{"cookie after a malformed pair", cookieOnly, checkReq("/", map[string]string{"cookie": "junk; session=" + jwt}), jwt, ""},
		{"cookie before a malformed pair", cookieOnly, checkReq("/", map[string]string{"cookie": "session=" + jwt + "; \"x"}), jwt, ""},
		{"cookie with a trailing semicolon", cookieOnly, checkReq("/", map[string]string{"cookie": "session=" + jwt + ";"}), jwt, ""},
		{"cookie beside a nameless pair", cookieOnly, checkReq("/", map[string]string{"cookie": "=x; session=" + jwt}), jwt, ""},
		{"quoted cookie", cookieOnly, checkReq("/", map[string]string{"cookie": `session="` + jwt + `"`}), jwt, ""},
		{"second cookie behind junk", all, checkReq("/", map[string]string{"authorization": "Bearer " + jwt, "cookie": "tw=M; junk; session=" + jwt}), "", badRequest},
		{"cookies joined by envoy", cookieOnly, checkReq("/", map[string]string{"cookie": "a=b,session=" + jwt}), jwt, ""},
		{"cookie with a comma", cookieOnly, checkReq("/", map[string]string{"cookie": "session=" + jwt + ",a=b"}), "", badRequest},
		{"cookie lines in header_map", cookieOnly, rawRequest("cookie", "a=b", "Cookie", "session="+jwt, "cookie", "session="+jwt), "", badRequest},
		{"percent-encoded cookie name", all, checkReq("/", map[string]string{"authorization": "Bearer " + jwt, "cookie": "sess%69on=" + jwt}), "", badRequest},
		{"empty cookie", all, checkReq("/", map[string]string{"authorization": "Bearer " + jwt, "cookie": "session="}), jwt, ""},
		{"query", all, checkReq("/x?access_token="+jwt+"&a=1", nil), jwt, ""},
		{"query off by default", headerOnly, checkReq("/x?access_token="+jwt, nil), "", ""},
		{"header plus query", all, checkReq("/x?access_token="+jwt, map[string]string{"authorization": "Bearer " + jwt}), "", badRequest},
		{"header plus query after a semicolon", all, checkReq("/x?a=1;access_token="+jwt, map[string]string{"authorization": "Bearer " + jwt}), "", badRequest},
		{"header plus encoded query name", all, checkReq("/x?access%5Ftoken="+jwt, map[string]string{"authorization": "Bearer " + jwt}), "", badRequest},
		{"header plus query with a bad escape", all, checkReq("/x?%zz&access_token="+jwt, map[string]string{"authorization": "Bearer " + jwt}), "", badRequest},
		{"header plus cookie", all, checkReq("/x", map[string]string{"authorization": "Bearer " + jwt, "cookie": "session=" + jwt}), "", badRequest},
		{"nil request", headerOnly, &authv3.CheckRequest{}, "", ""},
		{"cookie source, bearer beside it", cookieOnly, checkReq("/", map[string]string{"authorization": "Bearer " + jwt, "cookie": "session=" + jwt}), "", badRequest},
		{"custom header, bearer in authorization too", customHeader, checkReq("/", map[string]string{"authorization": "Bearer " + jwt, "x-token": "Bearer " + jwt}), "", badRequest},
		{"custom header", customHeader, checkReq("/", map[string]string{"x-token": "Bearer " + jwt, "authorization": "Basic dTpw"}), jwt, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.finder.Find(toRequest(c.req))
			switch c.fail {
			case badRequest:
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("err = %v, want invalid request", err)
				}
				return
			case badToken:
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("err = %v, want invalid token", err)
				}
				return
			}
			if err != nil || got.Token != c.want {
				t.Fatalf("Find = %q, %v; want %q", got.Token, err, c.want)
			}
		})
	}
}

func TestFoundSays(t *testing.T) {
	all := New(config.Token{Header: "authorization", Cookie: "session", QueryParameter: "access_token"})
	got, _ := all.Find(toRequest(checkReq("/", map[string]string{"authorization": "dpop " + jwt})))
	if got.Where != Header || got.Scheme != SchemeDPoP || got.Header != "authorization" {
		t.Errorf("DPoP header: %+v", got)
	}
	got, _ = all.Find(toRequest(checkReq("/", map[string]string{"cookie": "session=" + jwt})))
	if got.Where != Cookie || got.Scheme != "" {
		t.Errorf("cookie: %+v", got)
	}
	got, _ = all.Find(toRequest(checkReq("/?Access%5Ftoken="+jwt, nil)))
	if got.Where != Query || strings.Join(got.QueryKeys, " ") != "access_token Access_token Access%5Ftoken" || got.AfterSemicolon {
		t.Errorf("query: %+v", got)
	}
	got, _ = all.Find(toRequest(checkReq("/?a=1;access_token="+jwt, nil)))
	if !got.AfterSemicolon {
		t.Errorf("query after ';': %+v", got)
	}
}

func TestCookieWithout(t *testing.T) {
	cases := []struct {
		lines []string
		want  string
		keep  bool
	}{
		{[]string{"session=" + jwt}, "", false},
		{[]string{"a=b; session=" + jwt + "; c=d"}, "a=b; c=d", true},
		{[]string{"a=b, session=" + jwt, "junk; e=\"f\""}, "a=b; junk; e=\"f\"", true},
		{[]string{"pref=x,y; session=" + jwt}, "pref=x,y", true},
		{[]string{" ; ;session=" + jwt + ";"}, "", false},
	}
	for _, c := range cases {
		got, keep := CookieWithout(c.lines, "session")
		if got != c.want || keep != c.keep {
			t.Errorf("CookieWithout(%q) = %q, %v; want %q, %v", c.lines, got, keep, c.want, c.keep)
		}
		if len(CookieValues([]string{got}, "session")) != 0 {
			t.Errorf("CookieWithout(%q) kept the token cookie", c.lines)
		}
	}
}

func TestRedactPath(t *testing.T) {
	configured := New(config.Token{Header: "authorization", QueryParameter: "tok"})
	headerOnly := New(config.Token{Header: "authorization"})
	cases := []struct {
		f        *Finder
		in, want string
	}{
		{configured, "/a?x=1&tok=" + jwt + "&y=2", "/a?x=1&tok=REDACTED&y=2"},
		{configured, "/a?x=1;TOK=" + jwt, "/a?x=1;TOK=REDACTED"},
		{configured, "/a?t%6Fk=" + jwt, "/a?t%6Fk=REDACTED"},
		{headerOnly, "/a?access_token=" + jwt, "/a?access_token=REDACTED"},
		{headerOnly, "/a?x=1;access%5Ftoken=" + jwt + "&b", "/a?x=1;access%5Ftoken=REDACTED&b"},
		{headerOnly, "/a?access%5ftoken=" + jwt, "/a?access%5ftoken=REDACTED"},
		{headerOnly, "/a?ACCESS_TOKEN=" + jwt + "#access_token=" + jwt, "/a?ACCESS_TOKEN=REDACTED#access_token=REDACTED"},
		{headerOnly, "/a?tok=x", "/a?tok=x"},
		{headerOnly, "/a/b", "/a/b"},
	}
	for _, c := range cases {
		if got := c.f.RedactPath(c.in); got != c.want {
			t.Errorf("RedactPath(%q) = %q, want %q", c.in, got, c.want)
		}
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
