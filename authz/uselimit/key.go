package uselimit

import (
	"encoding/hex"
	"time"

	"github.com/tokenwise/tokenwise/authz/verify"
)

// MinTTL is the shortest life of a count. A token accepted a moment before it
// expires still gets a count that outlives it, and stores never see ttl <= 0.
const MinTTL = time.Second

// MaxTTL is the longest life of a count, far beyond any real token. It keeps
// "now + ttl" from overflowing for a token whose exp is centuries away: an
// overflowed expiry would be in the past, and the count would never hold.
const MaxTTL = 100 * 365 * 24 * time.Hour

// Key is the store key for one token: "<issuer>:jti:<jti>", or
// "<issuer>:sha256:<hex ContentHash>" when the token has no jti (for a JWT
// the hash of its signed content, for an opaque token the hash of the token,
// so the token itself is never stored). Issuer names
// cannot contain ':' (the config allows letters, digits, '.', '_' and '-'),
// so keys of different issuers never collide. The Redis store adds its
// key_prefix.
func Key(tok *verify.Token) string {
	if tok.ID != "" {
		return tok.Issuer + ":jti:" + tok.ID
	}
	return tok.Issuer + ":sha256:" + hex.EncodeToString(tok.ContentHash[:])
}

// TTL is how long the count of tok lives: until tok.Expiry plus tok.Leeway,
// or maxTTL when the token has no exp; never less than MinTTL nor more than MaxTTL.
func TTL(tok *verify.Token, now time.Time, maxTTL time.Duration) time.Duration {
	ttl := maxTTL
	if !tok.Expiry.IsZero() {
		ttl = tok.Expiry.Add(tok.Leeway).Sub(now)
	}
	return clampTTL(ttl)
}

// clampTTL keeps ttl within [MinTTL, MaxTTL].
func clampTTL(ttl time.Duration) time.Duration {
	return min(max(ttl, MinTTL), MaxTTL)
}
