package pop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ProofParams are what a client puts in a DPoP proof.
type ProofParams struct {
	// Method and URL are the request's; URL's query and fragment are dropped.
	Method, URL string
	// Token is the access token the proof goes with ("": no ath claim).
	Token string
	// Nonce is the server's nonce ("": none).
	Nonce string
	// IssuedAt is iat (zero: now). JTI is jti (empty: 128 random bits).
	IssuedAt time.Time
	JTI      string
}

// Sign makes a DPoP proof for p with key: ECDSA (ES256/384/512 by curve),
// RSA (PS256) or Ed25519 (EdDSA). It is the client side, for the
// `tokenwise dpop-proof` command and for tests.
func Sign(key crypto.Signer, p ProofParams) (string, error) {
	method, err := signingMethod(key)
	if err != nil {
		return "", err
	}
	jwk, err := PublicJWK(key.Public())
	if err != nil {
		return "", err
	}
	htu, err := NormalizeURL(p.URL)
	if err != nil {
		return "", fmt.Errorf("pop: url %q: %w", p.URL, err)
	}
	claims := jwt.MapClaims{"htm": p.Method, "htu": htu, "jti": p.JTI, "iat": issuedAt(p.IssuedAt)}
	if p.JTI == "" {
		claims["jti"] = randomID()
	}
	if p.Token != "" {
		sum := sha256.Sum256([]byte(p.Token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if p.Nonce != "" {
		claims["nonce"] = p.Nonce
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["typ"] = "dpop+jwt"
	t.Header["jwk"] = jwk
	return t.SignedString(key)
}

func issuedAt(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.Unix()
}

// signingMethod picks the proof algorithm for key.
func signingMethod(key crypto.Signer) (jwt.SigningMethod, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return jwt.SigningMethodES256, nil
		case "P-384":
			return jwt.SigningMethodES384, nil
		case "P-521":
			return jwt.SigningMethodES512, nil
		}
	case *rsa.PrivateKey:
		return jwt.SigningMethodPS256, nil
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, fmt.Errorf("pop: unsupported key type %T", key)
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
