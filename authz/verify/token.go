package verify

import (
	"sync"
	"time"
)

// Token is a bearer token whose signature and claims have been verified.
// It never holds the raw token string, so it is safe to keep and to log parts of.
// A Token from Verify may be shared by several Checks (see the Verifier's
// cache): treat it as read-only.
type Token struct {
	// Issuer is the configured name of the issuer that signed the token.
	Issuer string
	// Format is FormatJWT, or FormatOpaque for a token checked by introspection.
	Format string
	// Header is the decoded JOSE header (JSON numbers as float64, as golang-jwt
	// decodes it); nil for an opaque token, which has none.
	Header map[string]any
	// Claims is the decoded claim set, or an opaque token's introspection
	// answer without active. JSON numbers are json.Number, so large
	// integers stay exact; objects are map[string]any and arrays []any.
	Claims map[string]any
	// Scopes come from the space-separated scope claim or the scp array.
	Scopes []string
	// Subject and ID are the sub and jti claims ("" when absent).
	Subject string
	ID      string
	// IssuedAt and Expiry are iat and exp (zero when absent).
	IssuedAt time.Time
	Expiry   time.Time
	// Leeway is the issuer's allowed clock skew; a use count lives until Expiry plus Leeway.
	Leeway time.Duration
	// ContentHash is the SHA-256 of the signed content (the header and payload
	// segments, never the signature, which can be spelled more than one way);
	// for an opaque token, the SHA-256 of the token.
	// Use-limit keys fall back to it when the token has no jti.
	ContentHash [32]byte

	// derived memoizes what later stages compute from the token alone.
	derived *sync.Map
}

// Token formats, as input.token.format shows them.
const (
	FormatJWT    = "jwt"
	FormatOpaque = "opaque"
)

// Derived returns the value build computes from this token, computing it
// once per verified token: a token reused through the Verifier's cache is
// converted (for the policy input, say) on its first Check only. key tells
// apart the values of different users; build must depend on the token alone.
// Tokens not made by Verify compute the value every time.
func (t *Token) Derived(key any, build func() any) any {
	if t.derived == nil {
		return build()
	}
	if v, ok := t.derived.Load(key); ok {
		return v
	}
	v, _ := t.derived.LoadOrStore(key, build())
	return v
}

// Error is why a token was refused. Description is safe to show the client
// (it becomes the RFC 6750 error_description) and never contains the token.
type Error struct {
	Description string
	// Reason is a short stable label for metrics and the decision log, e.g. "expired".
	Reason string
	// Detail is for the decision log only, never the client: what the
	// operator needs to see, such as the unverified iss of an unknown
	// issuer (escaped and cut short; it is not a secret). Often "".
	Detail string
}

// Error is the Description, which the client may see (never Detail).
func (e *Error) Error() string { return e.Description }
