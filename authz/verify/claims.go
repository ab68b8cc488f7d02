package verify

import (
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// token applies the rules left after golang-jwt (max_lifetime, string types of
// sub and jti) and builds the Token. Claim numbers stay json.Number.
func (is *issuer) token(header map[string]any, claims jwt.MapClaims, hash [32]byte) (*Token, error) {
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if err := is.checkLifetime(iat, exp); err != nil {
		return nil, err
	}
	sub, ok := optionalString(claims, "sub")
	if !ok {
		return nil, newError(ReasonMalformed, "token subject is not a string")
	}
	jti, ok := optionalString(claims, "jti")
	if !ok {
		return nil, newError(ReasonMalformed, "token id is not a string")
	}
	if _, present := claims["jti"]; present && jti == "" {
		// RFC 7519 §4.1.7: a unique identifier. An empty one would make
		// every such token share one use count and one revocation.
		return nil, newError(ReasonMalformed, "token id (jti) is empty")
	}
	return &Token{
		Issuer:      is.cfg.Name,
		Format:      FormatJWT,
		Header:      header,
		Claims:      claims,
		Scopes:      scopes(claims),
		Subject:     sub,
		ID:          jti,
		IssuedAt:    numericTime(iat),
		Expiry:      numericTime(exp),
		Leeway:      is.cfg.Leeway,
		ContentHash: hash,
		derived:     &sync.Map{},
	}, nil
}

// checkLifetime enforces max_lifetime; without iat or exp the lifetime is
// unknown, which the limit cannot allow.
func (is *issuer) checkLifetime(iat, exp *jwt.NumericDate) *Error {
	limit := is.cfg.MaxLifetime
	switch {
	case limit <= 0:
		return nil
	case iat == nil:
		return newError(ReasonLifetime, "token has no issue time, which its issuer requires")
	case exp == nil:
		return newError(ReasonLifetime, "token has no expiration, which its issuer requires")
	case exp.Sub(iat.Time) > limit:
		return newError(ReasonLifetime, "token lifetime exceeds the maximum")
	}
	return nil
}

// optionalString returns claim name as a string; ok is false when it is present but not a string.
func optionalString(claims jwt.MapClaims, name string) (string, bool) {
	v, present := claims[name]
	if !present {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

// scopes reads scope (space-separated, RFC 8693) or else scp (an array, or a
// space-separated string as some issuers send it). Non-string items are dropped.
func scopes(claims jwt.MapClaims) []string {
	v, ok := claims["scope"]
	if !ok {
		v = claims["scp"]
	}
	switch s := v.(type) {
	case string:
		return strings.Fields(s)
	case []any:
		out := make([]string, 0, len(s))
		for _, item := range s {
			if str, ok := item.(string); ok && str != "" {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

func numericTime(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}
