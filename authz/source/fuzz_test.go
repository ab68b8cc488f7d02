package source

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/config"
)

// FuzzFind feeds Find arbitrary Authorization and Cookie lines (two of each)
// and paths, in both of Envoy's header shapes: header_map lines, or the
// headers map with repeats joined by ",". It checks the SPEC's property:
//
//   - Find never panics, and an error wraps ErrInvalidRequest or ErrInvalidToken;
//   - when Find returns a token, every token-like value an upstream could
//     read — each Authorization credential of the Bearer or DPoP scheme, each
//     cookie of the configured name (split as Go's net/http or a
//     comma-splitting parser would), each access_token query value (split
//     as Go's net/url would, or on ";") — is that token;
//   - when Find returns neither a token nor an error, there is no such value;
//   - RedactPath leaves no access_token value but REDACTED.
func FuzzFind(f *testing.F) {
	f.Add("Bearer abc.def.ghi", "", "", "", "/", false)
	f.Add("bearer  a.b.c", "", "session=x.y.z", "", "/p?access_token=q.r.s", true)
	f.Add("Bearer a, Bearer b", "", "session=a; session=b", "", "/?access_token=%zz&access_token=t", false)
	f.Add("Basic dXNlcjpwYXNz", "Bearer x", "a=b, session=c", "", "/?;access_token=x", true)
	f.Add("Bearer ", "", "session=", "", "/?access_token=", false)
	f.Add("Bearer\tt", "", "tw=M; junk; session=t", "", "/", true)
	f.Add("", "", "session=t;", "session=t", "/?a=1;access_token=t", true)
	f.Add("Bearer a\x00b", "", "session=\xff\xfe", "\"", "/\xff?access_token=\xff", true)
	f.Add("DPoP t", "", "=x; \"session=t", "", "/?access%5Ftoken=t", false)
	finder := New(config.Token{Header: "authorization", Cookie: "session", QueryParameter: "access_token"})
	f.Fuzz(func(t *testing.T, authz1, authz2, cookie1, cookie2, path string, raw bool) {
		authz, cookies := lines(authz1, authz2), lines(cookie1, cookie2)
		req := toRequest(fuzzRequest(authz, cookies, path, raw))
		got, err := finder.Find(req)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v wraps neither ErrInvalidRequest nor ErrInvalidToken", err)
			}
			if got.Token != "" {
				t.Fatal("a token returned with an error")
			}
			return
		}
		if !raw {
			// The headers map holds one value per name, joined as Envoy joins them.
			authz, cookies = joined(authz), joined(cookies)
		}
		readable := upstreamTokens(authz, cookies, path)
		for _, v := range readable {
			if v != got.Token {
				t.Fatalf("Find = %q, but an upstream could read %q (all: %q)", got.Token, v, readable)
			}
		}
		if got.Token != "" && !strings.Contains(strings.Join(append(authz, cookies...), "\n")+unescape(path, true)+unescape(strings.Join(cookies, ""), false), got.Token) {
			t.Fatalf("token %q is in none of the inputs", got.Token)
		}
		redacted := finder.RedactPath(path)
		for _, v := range queryValues(redacted) {
			if v != Redacted {
				t.Fatalf("RedactPath(%q) = %q keeps an access_token value", path, redacted)
			}
		}
	})
}

func lines(a, b string) []string {
	if b == "" {
		return []string{a}
	}
	return []string{a, b}
}

func joined(values []string) []string { return []string{strings.Join(values, ",")} }

// upstreamTokens lists what an upstream could take for a token, parsed
// without package source's code: every non-empty reading counts.
func upstreamTokens(authz, cookies []string, path string) []string {
	var out []string
	for _, v := range authz {
		for part := range strings.SplitSeq(v, ",") {
			if tok, ok := schemeToken(part); ok {
				out = append(out, tok)
			}
		}
	}
	for _, line := range cookies {
		if cs, err := http.ParseCookie(line); err == nil {
			for _, c := range cs {
				if c.Name == "session" && c.Value != "" {
					out = append(out, c.Value)
				}
			}
		}
		for seg := range strings.FieldsFuncSeq(line, func(r rune) bool { return r == ';' || r == ',' }) {
			k, v, ok := strings.Cut(seg, "=")
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if ok && strings.TrimSpace(k) == "session" && v != "" {
				out = append(out, v)
			}
		}
	}
	return append(out, queryValues(path)...)
}

// schemeToken reads a credential the way a lenient upstream might: the
// Bearer or DPoP scheme, any non-token character, then the rest.
func schemeToken(part string) (string, bool) {
	p := strings.TrimLeft(part, " \t\r\n\v\f")
	for _, scheme := range []string{"bearer", "dpop"} {
		if len(p) >= len(scheme) && strings.EqualFold(p[:len(scheme)], scheme) &&
			(len(p) == len(scheme) || !isTChar(p[len(scheme)])) {
			return strings.TrimSpace(p[len(scheme):]), true
		}
	}
	return "", false
}

// queryValues are the non-empty access_token values of path's query as Go's
// net/url reads it, and as a parser that also splits on ";" would.
func queryValues(path string) []string {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return nil
	}
	q, _, _ = strings.Cut(q, "#")
	var out []string
	values, _ := url.ParseQuery(q)
	for _, v := range values["access_token"] {
		if v != "" {
			out = append(out, v)
		}
	}
	for piece := range strings.FieldsFuncSeq(q, func(r rune) bool { return r == ';' || r == '&' }) {
		k, v, _ := strings.Cut(piece, "=")
		name, err := url.QueryUnescape(k)
		value, verr := url.QueryUnescape(v)
		if err == nil && verr == nil && name == "access_token" && value != "" {
			out = append(out, value)
		}
	}
	return out
}

// fuzzRequest builds a CheckRequest whose headers are in the headers map
// (repeats joined with ","), or one header_map line each when raw is set.
func fuzzRequest(authz, cookies []string, path string, raw bool) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Path: path}
	if raw {
		hm := &corev3.HeaderMap{}
		for _, v := range authz {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "Authorization", RawValue: []byte(v)})
		}
		for _, v := range cookies {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "cookie", RawValue: []byte(v)})
		}
		h.HeaderMap = hm
	} else {
		h.Headers = map[string]string{"authorization": strings.Join(authz, ","), "cookie": strings.Join(cookies, ",")}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}
