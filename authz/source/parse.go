package source

import (
	"strings"

	"github.com/tokenwise/tokenwise/authz/request"
)

// CookieValues returns the non-empty values of every cookie named name in
// the Cookie header values. It parses pair by pair: a malformed pair
// (no "=", a stray quote, junk) is skipped, never the whole line, so neither
// a second token nor the real one can hide behind it.
//
// Pairs are separated by ";", and by "," too, which Envoy uses to join
// repeated headers; an upstream that splits on ";" alone reads a pair with a
// comma whole, so a named pair whose value holds a comma gives both
// readings, and a request with two readings carries two tokens. A name
// matches as it is or percent-decoded, since some frameworks decode names.
func CookieValues(lines []string, name string) []string {
	var out []string
	for _, line := range lines {
		for seg := range strings.SplitSeq(line, ";") {
			whole := ""
			if k, v, ok := cookiePair(seg); ok && v != "" && cookieNameIs(k, name) {
				whole = v
				out = append(out, v)
			}
			if !strings.Contains(seg, ",") {
				continue
			}
			for pair := range strings.SplitSeq(seg, ",") {
				if k, v, ok := cookiePair(pair); ok && v != "" && v != whole && cookieNameIs(k, name) {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// CookieWithout rebuilds the Cookie header from lines without any cookie
// named name, keeping every other pair as it was sent, joined with "; ".
// keep is false when nothing remains, and the header should be removed.
func CookieWithout(lines []string, name string) (header string, keep bool) {
	var kept []string
	for _, line := range lines {
		for seg := range strings.SplitSeq(line, ";") {
			kept = appendWithout(kept, seg, name)
		}
	}
	return strings.Join(kept, "; "), len(kept) > 0
}

// CookieHeaderWithout is the request's Cookie header without the token
// cookie (see CookieWithout); keep is false when no other cookie remains.
func (f *Finder) CookieHeaderWithout(req *request.Request) (header string, keep bool) {
	return CookieWithout(req.Values("cookie"), f.cookie)
}

// appendWithout appends the ";"-separated segment seg unless it names the
// cookie. A segment holding "," is split only when one of its parts names
// the cookie, so other cookies' values with commas survive whole.
func appendWithout(kept []string, seg, name string) []string {
	seg = strings.TrimFunc(seg, isSpace)
	if seg == "" {
		return kept
	}
	if !strings.Contains(seg, ",") {
		if k, _, ok := cookiePair(seg); ok && cookieNameIs(k, name) {
			return kept
		}
		return append(kept, seg)
	}
	named := false
	for pair := range strings.SplitSeq(seg, ",") {
		if k, _, ok := cookiePair(pair); ok && cookieNameIs(k, name) {
			named = true
		}
	}
	if !named {
		return append(kept, seg)
	}
	for pair := range strings.SplitSeq(seg, ",") {
		if k, _, ok := cookiePair(pair); ok && cookieNameIs(k, name) {
			continue
		}
		if p := strings.TrimFunc(pair, isSpace); p != "" {
			kept = append(kept, p)
		}
	}
	return kept
}

// cookiePair splits one "name=value" pair, trimming whitespace around both
// and one pair of double quotes around the value (RFC 6265 §4.1.1). ok is
// false for a pair without "=" or without a name.
func cookiePair(pair string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(pair, "=")
	if !ok {
		return "", "", false
	}
	name = strings.TrimFunc(name, isSpace)
	if name == "" {
		return "", "", false
	}
	value = strings.TrimFunc(value, isSpace)
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return name, value, true
}

func cookieNameIs(got, want string) bool {
	return got == want || strings.ContainsRune(got, '%') && unescape(got, false) == want
}

// queryPair is one query parameter as the request spelled it.
type queryPair struct {
	rawName     string // the name before decoding
	name, value string // decoded
	// semicolon is set when ";" separated it from the parameter before: some
	// frameworks split there, Envoy does not, so Envoy cannot remove it alone.
	semicolon bool
}

// queryPairs splits path's query on "&" and ";" (frameworks differ on ";",
// so both count) and decodes each name and value tolerantly: an invalid
// escape is kept as it is rather than failing the whole query.
func queryPairs(path string) []queryPair {
	_, rawQuery, ok := strings.Cut(path, "?")
	if !ok {
		return nil
	}
	rawQuery, _, _ = strings.Cut(rawQuery, "#")
	var out []queryPair
	for piece := range strings.SplitSeq(rawQuery, "&") {
		for i, p := range strings.Split(piece, ";") {
			if p == "" {
				continue
			}
			k, v, _ := strings.Cut(p, "=")
			out = append(out, queryPair{rawName: k, name: unescape(k, true), value: unescape(v, true), semicolon: i > 0})
		}
	}
	return out
}

// unescape percent-decodes s (and "+" as a space when plus is set), keeping
// an invalid escape as it is.
func unescape(s string, plus bool) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case c == '+' && plus:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// Redacted replaces a redacted query value in logged paths.
const Redacted = "REDACTED"

// defaultQueryName is RFC 6750 §2.3's parameter: redacted in logs whether
// or not it is a configured source, since a client may send it anyway.
const defaultQueryName = "access_token"

// RedactPath returns path with the values of token-carrying query
// parameters replaced by REDACTED, so a logged path never carries a token:
// access_token always, and the configured query parameter. Names match
// case-insensitively and percent-decoded; "&" and ";" both separate, and the
// fragment is treated like the query.
func (f *Finder) RedactPath(path string) string {
	q := strings.IndexAny(path, "?#")
	if q < 0 {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	b.WriteString(path[:q])
	rest := path[q:]
	for rest != "" {
		b.WriteByte(rest[0]) // "?" or "#"
		rest = rest[1:]
		end := len(rest)
		if i := strings.IndexByte(rest, '#'); i >= 0 {
			end = i
		}
		f.redactParams(&b, rest[:end])
		rest = rest[end:]
	}
	return b.String()
}

// redactParams writes the parameters of query with token values redacted,
// keeping every separator where it was.
func (f *Finder) redactParams(b *strings.Builder, query string) {
	for {
		end := strings.IndexAny(query, "&;")
		piece := query
		if end >= 0 {
			piece = query[:end]
		}
		k, _, hasValue := strings.Cut(piece, "=")
		if hasValue && f.redacts(k) {
			b.WriteString(k + "=" + Redacted)
		} else {
			b.WriteString(piece)
		}
		if end < 0 {
			return
		}
		b.WriteByte(query[end])
		query = query[end+1:]
	}
}

// redacts reports whether a raw query name carries a token.
func (f *Finder) redacts(rawName string) bool {
	name := strings.TrimFunc(unescape(rawName, true), isSpace)
	return strings.EqualFold(name, defaultQueryName) || f.query != "" && strings.EqualFold(name, f.query)
}
