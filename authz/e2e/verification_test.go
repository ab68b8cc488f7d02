package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
)

// Every rule of SPEC step 2 refuses the token with 401 invalid_token, and
// the policy is never asked (the policy here would allow anything).
func TestEveryVerificationRuleRefusesTheToken(t *testing.T) {
	h := startPolicy(t, "package envoy.authz\n\nallow := true\n", func(c *config.Config) {
		c.Issuers[0].MaxLifetime = time.Hour
		c.Issuers[0].Algorithms = []string{"RS256", "ES256"}
	})
	h.waitReady()
	now := time.Now()
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "alice", "aud": "orders-api"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	good := h.issuer.Mint(claims(nil))
	attacker, _ := rsa.GenerateKey(rand.Reader, 2048)

	cases := map[string]string{
		"unknown issuer":          h.issuer.Mint(claims(map[string]any{"iss": "https://evil.example/"})),
		"bad signature":           tamper(good),
		"alg not allowed (PS256)": h.issuer.MintWith("PS256", nil, claims(nil)),
		"alg none":                unsigned(claims(map[string]any{"iss": h.issuer.URL(), "exp": now.Add(time.Minute).Unix()})),
		"HMAC with the public key": hmacWithPublicKey(h, claims(map[string]any{
			"iss": h.issuer.URL(), "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()})),
		"expired":                  h.issuer.Mint(claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})),
		"not yet valid":            h.issuer.Mint(claims(map[string]any{"nbf": now.Add(time.Minute).Unix()})),
		"wrong audience":           h.issuer.Mint(claims(map[string]any{"aud": "billing-api"})),
		"no audience":              h.issuer.Mint(claims(map[string]any{"aud": nil})),
		"no exp":                   h.issuer.Mint(claims(map[string]any{"exp": nil})),
		"lifetime over max":        h.issuer.Mint(claims(map[string]any{"exp": now.Add(2 * time.Hour).Unix()})),
		"no iat with max_lifetime": h.issuer.Mint(claims(map[string]any{"iat": nil})),
		"unknown kid":              h.issuer.MintWith("RS256", map[string]any{"kid": "nobody"}, claims(nil)),
		"embedded jwk of the attacker": signWith(attacker, map[string]any{
			"kid": "attacker", "jwk": map[string]any{"kty": "RSA", "kid": "attacker", "n": b64(attacker.N.Bytes()), "e": b64(big.NewInt(int64(attacker.E)).Bytes())},
		}, claims(map[string]any{"iss": h.issuer.URL(), "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()})),
		"jku to the attacker": signWith(attacker, map[string]any{"kid": "attacker", "jku": "http://127.0.0.1:1/jwks.json"},
			claims(map[string]any{"iss": h.issuer.URL(), "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()})),
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			a := read(h.check(envoyRequest("GET", "/x", bearer(token))))
			if a.allowed || a.status != 401 || !strings.Contains(a.headers["www-authenticate"], `error="invalid_token"`) {
				t.Fatalf("answer = %+v, want 401 invalid_token", a)
			}
		})
	}
	if a := read(h.check(envoyRequest("GET", "/x", bearer(good)))); !a.allowed {
		t.Fatalf("the good token was refused: %+v", a)
	}
}

func TestTypIsCheckedWhenTheIssuerSetsIt(t *testing.T) {
	h := startPolicy(t, "package envoy.authz\n\nallow := true\n", func(c *config.Config) { c.Issuers[0].Typ = "at+jwt" })
	h.waitReady()
	claims := map[string]any{"sub": "alice", "aud": "orders-api"}
	if a := read(h.check(envoyRequest("GET", "/x", bearer(h.issuer.Mint(claims))))); a.status != 401 {
		t.Errorf("typ JWT accepted where at+jwt is required: %+v", a)
	}
	at := h.issuer.MintWith("RS256", map[string]any{"typ": "at+jwt"}, claims)
	if a := read(h.check(envoyRequest("GET", "/x", bearer(at)))); !a.allowed {
		t.Errorf("at+jwt refused: %+v", a)
	}
}

func TestKeyRotationIsPickedUpOnTheFirstUnknownKid(t *testing.T) {
	h := startPolicy(t, "package envoy.authz\n\nallow := true\n")
	h.waitReady()
	claims := map[string]any{"sub": "alice", "aud": "orders-api"}
	old := h.issuer.Mint(claims)
	h.issuer.Rotate()
	fresh := h.issuer.Mint(claims)
	if a := read(h.check(envoyRequest("GET", "/x", bearer(fresh)))); !a.allowed {
		t.Fatalf("a token signed with the rotated-in key was refused: %+v", a)
	}
	if a := read(h.check(envoyRequest("GET", "/x", bearer(old)))); a.allowed {
		t.Fatalf("a token signed with the withdrawn key is still accepted")
	}
}

func tamper(token string) string {
	parts := strings.Split(token, ".")
	sig := []byte(parts[2])
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}
	return parts[0] + "." + parts[1] + "." + string(sig)
}

func unsigned(claims map[string]any) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		panic(err)
	}
	return s
}

// hmacWithPublicKey is the classic algorithm-confusion attack: HS256 keyed
// with the issuer's public key, which anyone can read from the JWKS.
func hmacWithPublicKey(h *harness, claims map[string]any) string {
	pub := h.issuer.PublicKey("RS256").(*rsa.PublicKey)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims))
	tok.Header["kid"] = h.issuer.KID("RS256")
	s, err := tok.SignedString(pub.N.Bytes())
	if err != nil {
		panic(err)
	}
	return s
}

func signWith(key *rsa.PrivateKey, header map[string]any, claims map[string]any) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
