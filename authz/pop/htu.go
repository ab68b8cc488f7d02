package pop

import (
	"errors"
	"strconv"
	"strings"
)

// errURL is any URL that cannot be normalised; the proof then cannot match.
var errURL = errors.New("not an absolute http(s) URL")

// NormalizeURL returns raw without its query and fragment, in RFC 3986 §6.2.2
// and §6.2.3 normal form: lowercase scheme and host, no default port, an
// empty path as "/", percent-encodings of unreserved characters decoded and
// the rest in uppercase hex (characters a URI may not hold raw encoded), and
// dot segments removed. Two URLs for the same resource give the same string.
func NormalizeURL(raw string) (string, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", errURL
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", errURL
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, err := normalizeAuthority(rest[:end], scheme)
	if err != nil {
		return "", err
	}
	path := rest[end:]
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	path, err = normalizePercent(path)
	if err != nil {
		return "", err
	}
	path = removeDotSegments(path)
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// RequestURL is the normal form of the URL a request was sent to, from the
// parts Envoy reports: scheme, authority (:authority or host) and path
// (which may carry the query).
func RequestURL(scheme, authority, path string) (string, error) {
	if path != "" && path[0] != '/' {
		return "", errURL // "*" (OPTIONS *) or an absolute form: no URL to bind
	}
	return NormalizeURL(scheme + "://" + authority + path)
}

// normalizeAuthority lowercases the host and drops the scheme's default
// port. Userinfo is refused: an HTTP request's authority never carries it.
func normalizeAuthority(authority, scheme string) (string, error) {
	if authority == "" || strings.Contains(authority, "@") {
		return "", errURL
	}
	host, port := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.Contains(authority[i:], "]") {
		host, port = authority[:i], authority[i+1:]
	}
	if host == "" {
		return "", errURL
	}
	host = strings.ToLower(host)
	if port == "" {
		return host, nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", errURL
	}
	if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
		return host, nil
	}
	return host + ":" + strconv.FormatUint(n, 10), nil
}

// normalizePercent decodes percent-encoded unreserved characters, uppercases
// the hex of the others and encodes bytes a path may not hold raw.
func normalizePercent(path string) (string, error) {
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return "", errURL
			}
			v := unhex(path[i+1])<<4 | unhex(path[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				writeEscaped(&b, v)
			}
			i += 2
		case isUnreserved(c) || isPathDelim(c):
			b.WriteByte(c)
		default:
			writeEscaped(&b, c)
		}
	}
	return b.String(), nil
}

func writeEscaped(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

// isUnreserved is RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathDelim is what a path segment may hold raw besides unreserved
// characters: sub-delims, ":", "@" (pchar) and the "/" between segments.
func isPathDelim(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
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

// removeDotSegments is RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	var out []string // output segments, each with its leading "/"
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = dropLast(out)
		case in == "/..":
			in = "/"
			out = dropLast(out)
		case in == "." || in == "..":
			in = ""
		default:
			end := strings.IndexByte(in[1:], '/')
			if end < 0 {
				end = len(in)
			} else {
				end++
			}
			out = append(out, in[:end])
			in = in[end:]
		}
	}
	return strings.Join(out, "")
}

func dropLast(s []string) []string {
	if len(s) == 0 {
		return s
	}
	return s[:len(s)-1]
}
