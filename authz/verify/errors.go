package verify

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// Reasons are the stable labels an *Error carries in Reason.
const (
	ReasonMalformed       = "malformed"        // not a well-formed compact JWS, or a claim of the wrong type
	ReasonUnknownIssuer   = "unknown_issuer"   // iss names no configured issuer
	ReasonAlgNotAllowed   = "alg_not_allowed"  // alg outside the issuer's allowlist, none, HMAC, or not the key's alg
	ReasonCrit            = "crit"             // a crit header parameter, none of which tokenwise understands
	ReasonTyp             = "typ"              // typ header differs from the issuer's required typ
	ReasonUnknownKID      = "unknown_kid"      // no loaded key matches, even after a refresh
	ReasonJWKSUnavailable = "jwks_unavailable" // the issuer's JWKS has never loaded
	ReasonBadSignature    = "bad_signature"    // the signature does not verify
	ReasonExpired         = "expired"          // exp (plus leeway) has passed
	ReasonNotYetValid     = "not_yet_valid"    // nbf or iat (minus leeway) is in the future
	ReasonMissingExp      = "missing_exp"      // no exp and the issuer requires one
	ReasonAudience        = "audience"         // aud has none of the issuer's audiences
	ReasonLifetime        = "lifetime"         // exp - iat over max_lifetime, or iat/exp missing with max_lifetime

	ReasonNotJWT                   = "not_jwt"                   // not a JWT, and no introspecting issuer takes it
	ReasonNoKeys                   = "no_keys"                   // a JWT of an issuer that only introspects
	ReasonInactive                 = "inactive"                  // introspection answered active: false
	ReasonNotAccessToken           = "not_access_token"          // introspection says it is a refresh token
	ReasonIntrospectionUnavailable = "introspection_unavailable" // the introspection endpoint gave no answer
)

// Unavailable reports whether the token was refused because something it
// depends on is unavailable (its issuer's keys never loaded, its
// introspection endpoint failed): the token may be good, so the answer is a
// retryable 503, not a 401.
func (e *Error) Unavailable() bool {
	return e.Reason == ReasonJWKSUnavailable || e.Reason == ReasonIntrospectionUnavailable
}

func newError(reason, description string) *Error {
	return &Error{Description: description, Reason: reason}
}

// fromJWT turns a golang-jwt error into an *Error. Claim errors come joined,
// so they are tested in order of what helps the client most.
func fromJWT(err error, claims jwt.MapClaims, expRequired bool) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, jwt.ErrTokenMalformed):
		return newError(ReasonMalformed, "token is malformed")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return newError(ReasonBadSignature, "signature is invalid")
	case errors.Is(err, jwt.ErrInvalidType):
		return newError(ReasonMalformed, "token has a claim of the wrong type")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && expRequired && claims["exp"] == nil:
		return newError(ReasonMissingExp, "token has no expiration")
	case errors.Is(err, jwt.ErrTokenExpired):
		return newError(ReasonExpired, "token is expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return newError(ReasonNotYetValid, "token is not valid yet")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return newError(ReasonNotYetValid, "token was issued in the future")
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return newError(ReasonAudience, "token audience is not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return newError(ReasonUnknownIssuer, "unknown issuer")
	}
	return newError(ReasonMalformed, "token is invalid")
}
