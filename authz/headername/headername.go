// Package headername is the rule for the header names tokenwise may set or
// remove on the request it lets through — a policy's headers and the
// configured forward.claims_to_headers alike: an RFC 9110 token, and not a
// pseudo-header, host or a hop-by-hop or framing header, which would change
// how the request is routed or framed rather than what it says.
package headername

import (
	"fmt"
	"strings"
)

// Check returns nil when name is a header tokenwise may set or remove, and
// otherwise an error that says why not (quoting name, which is not secret).
// Case does not matter: callers that need lowercase names check that too.
func Check(name string) error {
	switch {
	case strings.HasPrefix(name, ":"):
		return fmt.Errorf("%q is a pseudo-header", name)
	case !IsToken(name):
		return fmt.Errorf("%q is not a header name (an RFC 9110 token)", name)
	case reserved[strings.ToLower(name)]:
		return fmt.Errorf("%q is a connection or routing header", name)
	}
	return nil
}

// reserved are the names never set or removed: host (routing) and the
// hop-by-hop and framing headers (RFC 9110 §7.6.1).
var reserved = map[string]bool{
	"host": true, "connection": true, "transfer-encoding": true, "upgrade": true, "te": true,
	"keep-alive": true, "proxy-connection": true, "content-length": true,
}

// IsToken reports whether s is an RFC 9110 token: 1*tchar. Spaces, control
// characters and separators are not tchars, so a token cannot split or
// fold a header line.
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
