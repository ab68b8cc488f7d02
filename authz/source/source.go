// Package source finds the bearer token in a request.
//
// It looks where the configuration says (the Authorization header, a cookie,
// a query parameter) and refuses requests that carry more than one token, as
// RFC 6750 §2 requires. It never validates the token; that is package verify.
//
// The rule it keeps: every spelling of a token that the
// upstream could read — any Authorization value of the Bearer or DPoP
// scheme, in either of Envoy's header shapes, any cookie of the configured
// name, the configured query parameter — is either the one token returned or
// makes the request invalid. Parsers here are therefore tolerant where an
// upstream might be (a malformed cookie pair is skipped, not the whole line;
// "Bearer" followed by a tab is still Bearer; ";" separates query parameters
// as well as "&") and strict where a credential of ours is malformed (an empty
// or broken Bearer credential is an invalid token, never ignored).
package source

import (
	"errors"
	"slices"
	"strings"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/request"
)

// ErrInvalidRequest is returned (wrapped) when the request is malformed, for
// example two tokens; it becomes 400 invalid_request.
var ErrInvalidRequest = errors.New("invalid request")

// ErrInvalidToken is returned (wrapped) when a credential names the Bearer or
// DPoP scheme but is empty or not a b64token; it becomes 401 invalid_token.
var ErrInvalidToken = errors.New("invalid token")

// Where says which source a token was found in.
type Where int

// The sources a token can come from.
const (
	// None: the request carries no token.
	None Where = iota
	// Header: the configured header (Authorization), with a scheme.
	Header
	// Cookie: the cookie of the configured name.
	Cookie
	// Query: the configured query parameter.
	Query
)

// String names the source for logs.
func (w Where) String() string {
	switch w {
	case Header:
		return "header"
	case Cookie:
		return "cookie"
	case Query:
		return "query"
	}
	return "none"
}

// Schemes of the Authorization header tokenwise reads.
const (
	SchemeBearer = "Bearer"
	SchemeDPoP   = "DPoP"
)

// Found is the token of a request and where it was.
type Found struct {
	// Token is the raw token; "" when the request has none.
	Token string
	// Scheme is SchemeBearer or SchemeDPoP for a header token, "" otherwise.
	Scheme string
	// Where is the source the token came from.
	Where Where
	// Header is the lowercase name of the header it was in (Where == Header).
	Header string
	// QueryKeys are the query parameter names, as the request spelled them,
	// that carried the token (Where == Query), for removal upstream.
	QueryKeys []string
	// AfterSemicolon says the query parameter followed a ";" within an
	// "&"-separated piece: frameworks that split on ";" read it, but Envoy
	// does not, so Envoy cannot remove it by name.
	AfterSemicolon bool
}

// Finder finds tokens in requests according to a token configuration.
type Finder struct {
	// headers are the configured header and, when that is another one,
	// Authorization too: an upstream may read a Bearer token there whatever
	// tokenwise is configured to read, so one there is a token like any other.
	headers []string
	cookie  string
	query   string
}

// New returns a Finder for cfg.
func New(cfg config.Token) *Finder {
	f := &Finder{cookie: cfg.Cookie, query: cfg.QueryParameter}
	if h := strings.ToLower(cfg.Header); h != "" {
		f.headers = append(f.headers, h)
	}
	if !slices.Contains(f.headers, "authorization") {
		f.headers = append(f.headers, "authorization")
	}
	return f
}

// Find returns the request's token and where it was; Found.Token is "" when
// it has none. An error wraps ErrInvalidRequest (two tokens) or
// ErrInvalidToken (a malformed Bearer or DPoP credential); its text is safe
// to show the client.
func (f *Finder) Find(req *request.Request) (Found, error) {
	var found Found
	n := 0
	add := func(fd Found) {
		if n == 0 {
			found = fd
		}
		n++
	}
	for _, name := range f.headers {
		fd, ok, err := headerToken(req.Values(name))
		if err != nil {
			return Found{}, err
		}
		if ok {
			fd.Header = name
			add(fd)
		}
	}
	if f.cookie != "" {
		for _, v := range CookieValues(req.Values("cookie"), f.cookie) {
			add(Found{Token: v, Where: Cookie})
		}
	}
	if f.query != "" {
		for _, p := range queryPairs(req.Path) {
			if p.value != "" && strings.EqualFold(strings.TrimFunc(p.name, isSpace), f.query) {
				add(Found{Token: p.value, Where: Query, QueryKeys: queryKeys(f.query, p), AfterSemicolon: p.semicolon})
			}
		}
	}
	if n > 1 {
		return Found{}, invalid("the request carries more than one token")
	}
	return found, nil
}

// queryKeys lists the names to remove a query token by: the configured
// name and the request's spellings of it, decoded and raw.
func queryKeys(configured string, p queryPair) []string {
	keys := []string{configured}
	for _, k := range []string{p.name, p.rawName} {
		if k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func invalid(msg string) error { return &sourceError{msg, ErrInvalidRequest} }

func invalidToken(msg string) error { return &sourceError{msg, ErrInvalidToken} }

type sourceError struct {
	msg  string
	kind error
}

func (e *sourceError) Error() string { return e.msg }
func (e *sourceError) Unwrap() error { return e.kind }

// headerToken reads the configured header's values: one per header line
// (header_map) or Envoy's comma-joined value (headers), so both shapes count
// the same. A credential of another scheme (Basic, say) is not ours and is
// ignored, unless it sits beside one of ours: then the request carries two
// Authorization credentials, which is a 400 whichever shape it came in.
// A comma beside a credential of ours means two were joined: a b64token
// never holds one.
func headerToken(values []string) (Found, bool, error) {
	var (
		found   Found
		ours    int
		parts   int
		badDesc string
	)
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			parts++
			scheme, token, mine, err := credential(part)
			if !mine {
				continue
			}
			ours++
			if err != nil && badDesc == "" {
				badDesc = err.Error()
			}
			if err == nil && found.Token == "" {
				found = Found{Token: token, Scheme: scheme, Where: Header}
			}
		}
	}
	switch {
	case ours == 0:
		return Found{}, false, nil
	case parts > 1:
		return Found{}, false, invalid("the request carries more than one Authorization credential")
	case badDesc != "":
		return Found{}, false, invalidToken(badDesc)
	}
	return found, true, nil
}

// credential parses one credentials value (RFC 9110 §11.4): a scheme token,
// whitespace, then the b64token (RFC 6750 §2.1). mine says the scheme is
// Bearer or DPoP, matched case-insensitively; err says such a credential is
// empty or malformed. Any whitespace may separate the scheme from the token
// (an upstream may accept a tab); anything else right after the scheme
// ("Bearer:x") makes the credential malformed rather than another scheme.
func credential(v string) (scheme, token string, mine bool, err error) {
	v = trimSpace(v)
	end := 0
	for end < len(v) && isTChar(v[end]) {
		end++
	}
	switch {
	case strings.EqualFold(v[:end], SchemeBearer):
		scheme = SchemeBearer
	case strings.EqualFold(v[:end], SchemeDPoP):
		scheme = SchemeDPoP
	default:
		return "", "", false, nil
	}
	rest := v[end:]
	if rest != "" && !isSpace(rune(rest[0])) {
		return scheme, "", true, errors.New("the " + scheme + " credentials are malformed")
	}
	token = trimSpace(rest)
	if token == "" {
		return scheme, "", true, errors.New("the " + scheme + " credentials are empty")
	}
	if !isB64Token(token) {
		return scheme, "", true, errors.New("the " + scheme + " credentials are not a b64token")
	}
	return scheme, token, true, nil
}

// isSpace is whitespace an upstream might skip between a scheme and its
// token: HTTP's SP and HTAB, and the other ASCII spaces some parsers accept.
func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// trimSpace trims isSpace bytes from both ends of s.
func trimSpace(s string) string {
	for s != "" && isSpace(rune(s[0])) {
		s = s[1:]
	}
	for s != "" && isSpace(rune(s[len(s)-1])) {
		s = s[:len(s)-1]
	}
	return s
}

// isTChar reports whether c is an RFC 9110 tchar, the characters of a token
// such as an auth scheme or a header name.
func isTChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// IsToken reports whether s is an RFC 9110 token (a valid header name).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTChar(s[i]) {
			return false
		}
	}
	return true
}

// isB64Token reports whether s matches RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		if !b64Chars[body[i]] {
			return false
		}
	}
	return true
}

// b64Chars are the characters of a b64token before its "=" padding; a
// table, since every Check runs the whole token through it.
var b64Chars = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/") {
		t[c] = true
	}
	return t
}()
