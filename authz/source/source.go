// Package source finds the bearer token in a request.
//
// Tokens come with the Bearer scheme or, for DPoP-bound tokens, the DPoP
// scheme (RFC 9449 §7.1); FindScheme says which.
//
// It looks where the configuration says (the Authorization header, a cookie,
// a query parameter) and refuses requests that carry more than one token, as
// RFC 6750 §2 requires. It never validates the token; that is package verify.
package source

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/request"
)

// ErrInvalidRequest is returned (wrapped) when the request is malformed, for
// example two tokens; it becomes 400 invalid_request.
var ErrInvalidRequest = errors.New("invalid request")

// Finder finds tokens in requests according to a token configuration.
type Finder struct {
	header string
	cookie string
	query  string
}

// New returns a Finder for cfg.
func New(cfg config.Token) *Finder {
	return &Finder{header: strings.ToLower(cfg.Header), cookie: cfg.Cookie, query: cfg.QueryParameter}
}

// Find returns the request's bearer token, or "" when it has none. An error
// wraps ErrInvalidRequest and its text is safe to show the client.
func (f *Finder) Find(req *request.Request) (string, error) {
	token, _, err := f.FindScheme(req)
	return token, err
}

// Scheme values FindScheme reports: the Authorization scheme the token came
// with, lowercased; SchemeNone for a cookie or a query parameter.
const (
	SchemeBearer = "bearer"
	SchemeDPoP   = "dpop"
	SchemeNone   = ""
)

// FindScheme is Find that also says which Authorization scheme carried the
// token (Bearer or DPoP, RFC 9449 §7.1), so proof of possession can refuse a
// DPoP-bound token sent as Bearer.
func (f *Finder) FindScheme(req *request.Request) (token, scheme string, err error) {
	var found []credential
	if f.header != "" {
		creds, err := authorizationTokens(req.Values(f.header))
		if err != nil {
			return "", "", err
		}
		found = append(found, creds...)
	}
	if f.cookie != "" {
		found = append(found, unscheme(cookieTokens(req.Values("cookie"), f.cookie))...)
	}
	if f.query != "" {
		found = append(found, unscheme(queryTokens(req.Path, f.query))...)
	}
	switch len(found) {
	case 0:
		return "", "", nil
	case 1:
		if found[0].token == "" {
			return "", "", invalid("the bearer token is empty")
		}
		return found[0].token, found[0].scheme, nil
	default:
		return "", "", invalid("the request carries more than one token")
	}
}

// credential is one token found, with the scheme it came with.
type credential struct{ token, scheme string }

func unscheme(tokens []string) []credential {
	out := make([]credential, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, credential{t, SchemeNone})
	}
	return out
}

func invalid(msg string) error { return &requestError{msg} }

type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return ErrInvalidRequest }

// authorizationTokens parses Authorization header values. A value with
// another scheme (Basic, say) is not ours and is ignored; a comma means
// Envoy joined two headers, since a JWT never contains one.
func authorizationTokens(values []string) ([]credential, error) {
	var creds []credential
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			token, scheme, err := credentials(part)
			if err != nil {
				return nil, err
			}
			if scheme != "" {
				creds = append(creds, credential{token, scheme})
			}
		}
		if strings.Contains(v, ",") && len(creds) > 0 {
			return nil, invalid("the request carries more than one Authorization header")
		}
	}
	return creds, nil
}

// credentials parses one credentials value: the Bearer or DPoP scheme,
// matched case-insensitively (RFC 6750 §2.1, RFC 9449 §7.1), then exactly
// one b64token. scheme is "" for any other scheme.
func credentials(v string) (token, scheme string, err error) {
	v = strings.Trim(v, " \t")
	name, rest, _ := strings.Cut(v, " ")
	label := "Bearer"
	switch {
	case strings.EqualFold(name, "bearer"):
		scheme = SchemeBearer
	case strings.EqualFold(name, "dpop"):
		scheme, label = SchemeDPoP, "DPoP"
	default:
		return "", "", nil
	}
	token = strings.TrimLeft(rest, " \t")
	if token == "" {
		return "", "", invalid("the " + label + " credentials are empty")
	}
	if !isB64Token(token) {
		return "", "", invalid("the " + label + " credentials are not a b64token")
	}
	return token, scheme, nil
}

// isB64Token reports whether s matches RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

func cookieTokens(values []string, name string) []string {
	var tokens []string
	for _, v := range values {
		// Envoy joins repeated cookie headers with "; " or ","; accept both.
		for line := range strings.SplitSeq(v, ",") {
			cookies, err := http.ParseCookie(strings.TrimSpace(line))
			if err != nil {
				continue
			}
			for _, c := range cookies {
				if c.Name == name {
					tokens = append(tokens, c.Value)
				}
			}
		}
	}
	return tokens
}

func queryTokens(path, name string) []string {
	_, rawQuery, ok := strings.Cut(path, "?")
	if !ok {
		return nil
	}
	rawQuery, _, _ = strings.Cut(rawQuery, "#")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		// A malformed query still must not hide a token: count what parsed.
		return q[name]
	}
	return q[name]
}

// RedactPath returns path with the value of the token's query parameter
// replaced, so a logged path never carries a token.
func (f *Finder) RedactPath(path string) string {
	if f.query == "" {
		return path
	}
	base, rawQuery, ok := strings.Cut(path, "?")
	if !ok {
		return path
	}
	parts := strings.Split(rawQuery, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); err == nil && name == f.query || k == f.query {
			parts[i] = k + "=REDACTED"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}
