package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/introspect"
)

// isJWT says whether raw takes the JWT way: three dot-separated segments
// whose first is base64url (padded or not) of a JSON object. Such a token is
// verified as a JWT, and a flaw past that point (lax base64, a bad payload,
// a bad signature) refuses it as malformed or invalid. Anything else (one
// or two segments like Hydra's ory_at_… tokens, a five-segment JWE, a header
// that is not JSON) is an opaque token, for introspection.
func isJWT(raw string) bool {
	if strings.Count(raw, ".") != 2 {
		return false
	}
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "="))
	if err != nil {
		return false
	}
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// newIntrospector makes cfg's introspection client; a URL the
// configuration leaves out comes from disc.
func newIntrospector(cfg config.Issuer, disc *discovery, opts Options, log *slog.Logger) (*introspect.Client, error) {
	o := introspect.Options{
		Name: cfg.Name, HTTPClient: opts.IntrospectionClient, CacheSize: opts.CacheSize,
		Metrics: opts.Metrics, Logger: log,
	}
	if cfg.Introspection.URL == "" {
		if disc == nil {
			return nil, errors.New("introspection has no url and no discovery document")
		}
		o.Endpoint = disc.introspectionURL
	}
	return introspect.New(*cfg.Introspection, o)
}

// newAnswerValidator checks an introspection answer's claims as a JWT's,
// except that iss is optional (checked by checkAnswerIssuer when present).
func newAnswerValidator(cfg config.Issuer) *jwt.Validator {
	return jwt.NewValidator(claimRules(cfg)...)
}

// route adds an introspecting issuer to the opaque-token routes. Two
// issuers with one prefix (or two without) would make routing a guess.
func (v *Verifier) route(is *issuer) error {
	if is.introspect == nil {
		return nil
	}
	prefix := is.cfg.Introspection.TokenPrefix
	if prefix == "" {
		if v.unprefixed != nil {
			return fmt.Errorf("verify: issuers %q and %q both introspect without a token_prefix", v.unprefixed.cfg.Name, is.cfg.Name)
		}
		v.unprefixed = is
		return nil
	}
	for _, other := range v.prefixed {
		if other.cfg.Introspection.TokenPrefix == prefix {
			return fmt.Errorf("verify: issuers %q and %q have the same token_prefix", other.cfg.Name, is.cfg.Name)
		}
	}
	v.prefixed = append(v.prefixed, is)
	// Longest first: with ory_ and ory_at_, an ory_at_ token goes to ory_at_.
	slices.SortStableFunc(v.prefixed, func(a, b *issuer) int {
		return len(b.cfg.Introspection.TokenPrefix) - len(a.cfg.Introspection.TokenPrefix)
	})
	return nil
}

// introspectorFor is the issuer an opaque token goes to, or nil.
func (v *Verifier) introspectorFor(raw string) *issuer {
	for _, is := range v.prefixed {
		if strings.HasPrefix(raw, is.cfg.Introspection.TokenPrefix) {
			return is
		}
	}
	return v.unprefixed
}

// verifyOpaque checks an opaque token by introspection. The token goes
// nowhere but its issuer's endpoint.
func (v *Verifier) verifyOpaque(ctx context.Context, raw string) (*Token, error) {
	is := v.introspectorFor(raw)
	if is == nil {
		return nil, newError(ReasonNotJWT, "the token is not a JWT")
	}
	a, err := is.introspect.Introspect(ctx, raw)
	if err != nil {
		return nil, newError(ReasonIntrospectionUnavailable, "the token's issuer could not be asked about it")
	}
	if !a.Active {
		return nil, newError(ReasonInactive, "the token is not active")
	}
	// A cached answer is converted once. Only an accepted token is kept:
	// the cache never keeps an answer past its exp, and nbf and iat that
	// passed once stay passed, so acceptance holds for the entry's life;
	// a refusal such as "not valid yet" may not.
	r := a.Derived(func() (any, bool) {
		tok, err := is.opaqueToken(a)
		return opaqueResult{tok, err}, err == nil
	}).(opaqueResult)
	return r.tok, r.err
}

type opaqueResult struct {
	tok *Token
	err error
}

// opaqueToken applies the JWT claim rules to an active answer and builds
// its Token: no header, the answer (without active) as the claims.
func (is *issuer) opaqueToken(a *introspect.Answer) (*Token, error) {
	claims := jwt.MapClaims(a.Claims)
	if err := is.checkAnswerIssuer(claims); err != nil {
		return nil, err
	}
	if err := checkAccessToken(claims); err != nil {
		return nil, err
	}
	if verr := is.answers.Validate(claims); verr != nil {
		return nil, fromJWT(verr, claims, is.cfg.ExpirationRequired())
	}
	tok, err := is.token(nil, claims, a.TokenHash)
	if err != nil {
		return nil, err
	}
	tok.Format = FormatOpaque
	return tok, nil
}

// checkAnswerIssuer: RFC 7662 makes iss optional; when present it must be
// the configured issuer exactly, as a JWT's must.
func (is *issuer) checkAnswerIssuer(claims jwt.MapClaims) *Error {
	v, present := claims["iss"]
	if !present {
		return nil
	}
	if s, ok := v.(string); !ok || s != is.cfg.Issuer {
		return newError(ReasonUnknownIssuer, "token issuer does not match the issuer that introspected it")
	}
	return nil
}

// checkAccessToken refuses an answer that says the token is not an access
// token: endpoints such as Hydra's also answer active for refresh tokens,
// which are long-lived and meant for the token endpoint only, never for an
// API. Hydra says so in token_use; others in token_type.
func checkAccessToken(claims jwt.MapClaims) *Error {
	if use, present := claims["token_use"]; present && use != "access_token" {
		return newError(ReasonNotAccessToken, "the token is not an access token")
	}
	if typ, ok := claims["token_type"].(string); ok && strings.Contains(strings.ToLower(typ), "refresh") {
		return newError(ReasonNotAccessToken, "the token is not an access token")
	}
	return nil
}
