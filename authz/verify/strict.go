package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// maxJSONDepth bounds nesting in a token's header and claims. Real tokens
// nest a few levels; the cap keeps the duplicate check's stack small.
const maxJSONDepth = 32

// compact is a compact JWS split into its parts and decoded, nothing of it
// trusted yet.
type compact struct {
	signed  string         // header.payload: the signing input
	header  map[string]any // the JOSE header (numbers as float64, as golang-jwt has them)
	payload []byte         // the decoded payload, not yet parsed
	sig     []byte
}

// split applies every rule that needs no key and no issuer: the size cap
// before any decoding, exactly three segments, strict base64url (one spelling
// per token), and a JSON object header without duplicate member names.
func split(raw string, maxBytes int) (*compact, *Error) {
	if len(raw) > maxBytes {
		return nil, newError(ReasonMalformed, "token is too large")
	}
	h, rest, ok1 := strings.Cut(raw, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, newError(ReasonMalformed, "token is malformed")
	}
	hb, err1 := decodeB64(h)
	pb, err2 := decodeB64(p)
	sb, err3 := decodeB64(s)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, newError(ReasonMalformed, "token is not strict base64url")
	}
	if err := checkJSON(hb); err != nil {
		return nil, newError(ReasonMalformed, "token header is malformed: "+err.Error())
	}
	var hdr map[string]any
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr == nil {
		return nil, newError(ReasonMalformed, "token header is malformed")
	}
	return &compact{signed: raw[:len(h)+1+len(p)], header: hdr, payload: pb, sig: sb}, nil
}

// decodeB64 is strict unpadded base64url: no padding, no line breaks, and no
// non-zero trailing bits.
func decodeB64(seg string) ([]byte, error) {
	if strings.ContainsAny(seg, "\r\n") {
		return nil, errors.New("line break in base64url")
	}
	return base64.RawURLEncoding.Strict().DecodeString(seg)
}

// decodeClaims parses the payload as a claim set: a JSON object without
// duplicate member names, numbers kept as json.Number.
func decodeClaims(payload []byte) (jwt.MapClaims, *Error) {
	if err := checkJSON(payload); err != nil {
		return nil, newError(ReasonMalformed, "token claims are malformed: "+err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims jwt.MapClaims
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, newError(ReasonMalformed, "token claims are malformed")
	}
	return claims, nil
}

// checkJSON reports a duplicate member name at any depth, nesting deeper than
// maxJSONDepth, invalid JSON, or data after the value. encoding/json lets the
// last of two duplicates win while other parsers keep the first, so a token
// with both could mean one thing to tokenwise and another to the upstream.
// Member names compare after unescaping ("a" and "\u0061" are the same).
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []jsonFrame
	done := false // the top-level value is complete
	for {
		tok, err := dec.Token()
		if err == io.EOF && done {
			return nil
		}
		if err != nil {
			return errors.New("invalid JSON")
		}
		if done {
			return errors.New("data after the JSON value")
		}
		if n := len(stack); n > 0 && stack[n-1].wantName {
			if name, ok := tok.(string); ok {
				if stack[n-1].names[name] {
					return fmt.Errorf("duplicate member name %q", truncateName(name))
				}
				stack[n-1].names[name] = true
				stack[n-1].wantName = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxJSONDepth {
				return errors.New("nested too deeply")
			}
			f := jsonFrame{}
			if tok == json.Delim('{') {
				f = jsonFrame{names: map[string]bool{}, wantName: true}
			}
			stack = append(stack, f)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value just ended (a scalar or a closed container): an enclosing
		// object expects a member name next.
		if n := len(stack); n == 0 {
			done = true
		} else if stack[n-1].names != nil {
			stack[n-1].wantName = true
		}
	}
}

// jsonFrame is one open container in checkJSON: names is nil for an array.
type jsonFrame struct {
	names    map[string]bool
	wantName bool
}

// truncateName keeps error text short: it is shown to the client.
func truncateName(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// checkB64 refuses the RFC 7797 b64 header parameter unless it is true:
// with b64 false the payload is signed unencoded, which tokenwise does not
// support; reading such a token as encoded would verify different bytes.
func checkB64(hdr map[string]any) *Error {
	v, ok := hdr["b64"]
	if !ok {
		return nil
	}
	if b, isBool := v.(bool); isBool && b {
		return nil
	}
	return newError(ReasonMalformed, "token uses an unencoded payload (b64), which is not supported")
}

// keyMatchesAlg reports whether key may verify a signature of alg: the key
// type fits the algorithm family, an EC key's curve is the one alg names, and
// an RSA key has at least minRSABits, an exponent of at least 3 and no ROCA
// fingerprint. It repeats the JWKS filter on purpose,
// so a key that reached the store some other way cannot be misused.
func keyMatchesAlg(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && k.N.BitLen() >= minRSABits && k.E >= 3 && !hasROCAFingerprint(k.N)
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		return want != nil && k.Curve == want
	case ed25519.PublicKey:
		return alg == "EdDSA" && len(k) == ed25519.PublicKeySize
	}
	return false
}

// strictPSS are the PS algorithms with the salt length RFC 7518 §3.5
// requires (the hash's size). golang-jwt verifies PS tokens with any salt
// length, which lets one message have many valid signatures.
var strictPSS = map[string]*jwt.SigningMethodRSAPSS{
	"PS256": strictPSSOf(jwt.SigningMethodPS256),
	"PS384": strictPSSOf(jwt.SigningMethodPS384),
	"PS512": strictPSSOf(jwt.SigningMethodPS512),
}

func strictPSSOf(m *jwt.SigningMethodRSAPSS) *jwt.SigningMethodRSAPSS {
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
	return &jwt.SigningMethodRSAPSS{SigningMethodRSA: m.SigningMethodRSA, Options: opts, VerifyOptions: opts}
}

// signingMethod is golang-jwt's method for alg, made strict where it is lax.
func signingMethod(alg string) jwt.SigningMethod {
	if m, ok := strictPSS[alg]; ok {
		return m
	}
	return jwt.GetSigningMethod(alg)
}

// rocaPrimes and rocaGenerator define the ROCA fingerprint (CVE-2017-15361,
// Nemec et al.): an RSA modulus made by the vulnerable Infineon library is,
// modulo each of these primes, a power of 65537. A random modulus passes all
// 38 tests with negligible probability.
var (
	rocaPrimes = []uint64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73,
		79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}
	rocaProduct, rocaPowers = rocaTables()
)

const rocaGenerator = 65537

// rocaTables computes the product of rocaPrimes and, per prime, the set of
// powers of 65537 modulo it as a bitmask.
func rocaTables() (*big.Int, [][3]uint64) {
	product := big.NewInt(1)
	powers := make([][3]uint64, len(rocaPrimes))
	for i, p := range rocaPrimes {
		product.Mul(product, new(big.Int).SetUint64(p))
		for x := uint64(1); ; {
			powers[i][x/64] |= 1 << (x % 64)
			if x = x * (rocaGenerator % p) % p; x == 1 {
				break
			}
		}
	}
	return product, powers
}

// hasROCAFingerprint reports whether n looks like a ROCA-vulnerable modulus.
// One big division, then word arithmetic: cheap next to an RSA verification.
func hasROCAFingerprint(n *big.Int) bool {
	words := new(big.Int).Mod(n, rocaProduct).Bits()
	for i, p := range rocaPrimes {
		var r uint64
		for j := len(words) - 1; j >= 0; j-- {
			if bits.UintSize == 64 {
				_, r = bits.Div64(r, uint64(words[j]), p)
			} else {
				r = (r<<32 | uint64(words[j])) % p
			}
		}
		if rocaPowers[i][r/64]&(1<<(r%64)) == 0 {
			return false
		}
	}
	return true
}
