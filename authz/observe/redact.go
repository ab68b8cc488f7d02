package observe

import "regexp"

// Patterns of secrets that free text (a policy's print output) may carry.
var (
	secretHeaderValue = regexp.MustCompile(`(?i)("(?:authorization|proxy-authorization|cookie|dpop|x-api-key)"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	credentialValue   = regexp.MustCompile(`(?i)\b(bearer|dpop)(\s+)[A-Za-z0-9\-._~+/]+=*`)
	jwtLike           = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)*`)
)

// Scrub redacts what looks like a secret in free text bound for a log: the
// values of Authorization, Cookie and DPoP headers in JSON, Bearer and DPoP
// credentials, and anything shaped like a JWS. Structured log fields never
// need it (they hold no such values); it guards text tokenwise does not
// write itself, such as a policy's print().
func Scrub(text string) string {
	text = secretHeaderValue.ReplaceAllString(text, `$1"REDACTED"`)
	text = credentialValue.ReplaceAllString(text, `$1${2}REDACTED`)
	return jwtLike.ReplaceAllString(text, "REDACTED")
}
