package pop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// b64 is strict unpadded base64url: JOSE forbids padding, and strictness
// makes each value's spelling unique, so a thumbprint has one input only.
var b64 = base64.RawURLEncoding.Strict()

// RSA modulus bounds: below 2048 bits is weak (RFC 7518 §3.3); above 8192
// bits only makes verification expensive for whoever sends it.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// publicKey is a proof's jwk header, parsed and checked.
type publicKey struct {
	key crypto.PublicKey
	// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url.
	thumbprint string
}

// curves are the EC curves a proof key may use, with their coordinate size.
var curves = map[string]struct {
	curve elliptic.Curve
	size  int
}{
	"P-256": {elliptic.P256(), 32},
	"P-384": {elliptic.P384(), 48},
	"P-521": {elliptic.P521(), 66},
}

// jwkMembers are the JWK members tokenwise reads. The private ones (RFC 7518
// §6.2.2, §6.3.2, §6.4; RFC 8037 §2) are read only to refuse them: a proof's
// jwk that holds one is not a public key, and its client has leaked it.
type jwkMembers struct {
	Kty string          `json:"kty"`
	Crv string          `json:"crv"`
	X   string          `json:"x"`
	Y   string          `json:"y"`
	N   string          `json:"n"`
	E   string          `json:"e"`
	D   json.RawMessage `json:"d"`
	P   json.RawMessage `json:"p"`
	Q   json.RawMessage `json:"q"`
	DP  json.RawMessage `json:"dp"`
	DQ  json.RawMessage `json:"dq"`
	QI  json.RawMessage `json:"qi"`
	Oth json.RawMessage `json:"oth"`
	K   json.RawMessage `json:"k"`
}

func (m *jwkMembers) hasPrivate() bool {
	for _, v := range []json.RawMessage{m.D, m.P, m.Q, m.DP, m.DQ, m.QI, m.Oth, m.K} {
		if v != nil {
			return true
		}
	}
	return false
}

// parseJWK parses a public JWK and computes its thumbprint. It refuses
// private members, unknown key types and values that are not in their one
// canonical spelling, so equal keys always have equal thumbprints.
func parseJWK(raw []byte) (*publicKey, error) {
	var m jwkMembers
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("the jwk header is not a JSON object of strings")
	}
	if m.hasPrivate() {
		return nil, errors.New("the jwk header holds a private key")
	}
	switch m.Kty {
	case "EC":
		return parseEC(m.Crv, m.X, m.Y)
	case "RSA":
		return parseRSA(m.N, m.E)
	case "OKP":
		return parseOKP(m.Crv, m.X)
	}
	return nil, errors.New("the jwk header has an unsupported kty")
}

func parseEC(crv, x, y string) (*publicKey, error) {
	c, ok := curves[crv]
	if !ok {
		return nil, errors.New("the jwk header has an unsupported crv")
	}
	xb, err1 := b64.DecodeString(x)
	yb, err2 := b64.DecodeString(y)
	if err1 != nil || err2 != nil || len(xb) != c.size || len(yb) != c.size {
		return nil, errors.New("the jwk header's EC coordinates are malformed")
	}
	point := append(append([]byte{4}, xb...), yb...)
	key, err := ecdsa.ParseUncompressedPublicKey(c.curve, point)
	if err != nil {
		return nil, errors.New("the jwk header's EC point is not on its curve")
	}
	return &publicKey{key: key, thumbprint: thumbprint(`{"crv":`, crv, `,"kty":"EC","x":`, x, `,"y":`, y, `}`)}, nil
}

func parseRSA(n, e string) (*publicKey, error) {
	nb, err1 := b64.DecodeString(n)
	eb, err2 := b64.DecodeString(e)
	// RFC 7518 §6.3.1: minimal big-endian values, no leading zero octet.
	if err1 != nil || err2 != nil || len(nb) == 0 || nb[0] == 0 || len(eb) == 0 || eb[0] == 0 || len(eb) > 4 {
		return nil, errors.New("the jwk header's RSA values are malformed")
	}
	key := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
	if bits := key.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("the jwk header's RSA key must have %d to %d bits", minRSABits, maxRSABits)
	}
	if key.E < 3 || key.E%2 == 0 {
		return nil, errors.New("the jwk header's RSA exponent is invalid")
	}
	return &publicKey{key: key, thumbprint: thumbprint(`{"e":`, e, `,"kty":"RSA","n":`, n, `}`)}, nil
}

func parseOKP(crv, x string) (*publicKey, error) {
	if crv != "Ed25519" {
		return nil, errors.New("the jwk header has an unsupported crv")
	}
	xb, err := b64.DecodeString(x)
	if err != nil || len(xb) != ed25519.PublicKeySize {
		return nil, errors.New("the jwk header's Ed25519 key is malformed")
	}
	return &publicKey{key: ed25519.PublicKey(xb), thumbprint: thumbprint(`{"crv":`, crv, `,"kty":"OKP","x":`, x, `}`)}, nil
}

// thumbprint hashes the RFC 7638 §3 canonical JSON: the required members in
// lexicographic order, no whitespace. parts alternate literal JSON and
// string values; values are JSON-quoted here.
func thumbprint(parts ...string) string {
	var buf bytes.Buffer
	for i, p := range parts {
		if i%2 == 1 {
			q, _ := json.Marshal(p)
			buf.Write(q)
			continue
		}
		buf.WriteString(p)
	}
	sum := sha256.Sum256(buf.Bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// keyFitsAlg reports whether key can verify alg: the EC curve must be the
// one alg names, RSA for RS/PS, Ed25519 for EdDSA.
func keyFitsAlg(key crypto.PublicKey, alg string) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		want := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
		return want != "" && k.Curve.Params().Name == want
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// PublicJWK returns the public JWK of pub (ECDSA P-256/384/521, RSA or
// Ed25519) as a JSON object, the form a proof's jwk header takes.
func PublicJWK(pub crypto.PublicKey) (map[string]any, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		name := k.Curve.Params().Name
		c, ok := curves[name]
		if !ok {
			return nil, fmt.Errorf("pop: unsupported curve %s", name)
		}
		point, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("pop: %w", err)
		}
		x, y := point[1:1+c.size], point[1+c.size:]
		return map[string]any{"kty": "EC", "crv": name, "x": b64.EncodeToString(x), "y": b64.EncodeToString(y)}, nil
	case *rsa.PublicKey:
		e := big.NewInt(int64(k.E)).Bytes()
		return map[string]any{"kty": "RSA", "n": b64.EncodeToString(k.N.Bytes()), "e": b64.EncodeToString(e)}, nil
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(k)}, nil
	}
	return nil, fmt.Errorf("pop: unsupported key type %T", pub)
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of pub, base64url: the
// value of cnf.jkt in a token bound to that key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk, err := PublicJWK(pub)
	if err != nil {
		return "", err
	}
	raw, _ := json.Marshal(jwk)
	k, err := parseJWK(raw)
	if err != nil {
		return "", fmt.Errorf("pop: %w", err)
	}
	return k.thumbprint, nil
}
