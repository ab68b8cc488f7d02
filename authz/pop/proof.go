package pop

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxJTIBytes bounds a proof's jti; RFC 9449 asks for 96 bits of randomness,
// which takes a few dozen characters.
const maxJTIBytes = 256

// proof is a DPoP proof whose form, key and signature have been checked.
type proof struct {
	key                       *publicKey
	jti, htm, htu, ath, nonce string
	iat                       time.Time
}

// proofHeader is the JOSE header of a proof.
type proofHeader struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
}

// parseProof checks a proof's form (RFC 9449 §4.3 steps 2–7): a compact JWS
// with typ dpop+jwt, an allowed asymmetric alg, a public jwk fit for that alg
// whose signature verifies, and the claims a proof must carry.
func parseProof(raw string, algs []string, keys *keyCache) (*proof, *Error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, invalidProof(ReasonMalformed, "the DPoP proof is not a compact JWS")
	}
	var h proofHeader
	if err := decodeSegment(parts[0], &h); err != nil {
		return nil, invalidProof(ReasonMalformed, "the DPoP proof's header is malformed")
	}
	key, perr := checkHeader(h, algs, keys)
	if perr != nil {
		return nil, perr
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, invalidProof(ReasonMalformed, "the DPoP proof's signature is malformed")
	}
	method := jwt.GetSigningMethod(h.Alg)
	if method == nil || method.Verify(parts[0]+"."+parts[1], sig, key.key) != nil {
		return nil, invalidProof(ReasonSignature, "the DPoP proof's signature is invalid")
	}
	var claims claimSet
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, invalidProof(ReasonMalformed, "the DPoP proof's claims are malformed")
	}
	pr, perr := proofClaims(&claims)
	if perr != nil {
		return nil, perr
	}
	pr.key = key
	return pr, nil
}

// checkHeader checks typ, alg and jwk, and returns the proof's key.
func checkHeader(h proofHeader, algs []string, keys *keyCache) (*publicKey, *Error) {
	if !strings.EqualFold(h.Typ, "dpop+jwt") {
		return nil, invalidProof(ReasonTyp, "the DPoP proof's typ is not dpop+jwt")
	}
	if h.Crit != nil {
		return nil, invalidProof(ReasonMalformed, "the DPoP proof has critical header parameters tokenwise does not understand")
	}
	if !slices.Contains(algs, h.Alg) || !asymmetric(h.Alg) {
		return nil, invalidProof(ReasonAlg, "the DPoP proof's alg is not allowed")
	}
	if h.JWK == nil {
		return nil, invalidProof(ReasonJWK, "the DPoP proof has no jwk header")
	}
	key, err := keys.parse(h.JWK)
	if err != nil {
		return nil, invalidProof(ReasonJWK, "the DPoP proof's key is unusable: "+err.Error())
	}
	if !keyFitsAlg(key.key, h.Alg) {
		return nil, invalidProof(ReasonAlg, "the DPoP proof's alg does not fit its key")
	}
	return key, nil
}

// asymmetric reports whether alg is a public-key signature algorithm: a
// proof's key is public, so a MAC or none would prove nothing.
func asymmetric(alg string) bool {
	return slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}, alg)
}

// claimSet is a proof's payload. Numbers stay raw so that iat must be a
// JSON number, not a string holding one.
type claimSet struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	ATH   string          `json:"ath"`
	Nonce *string         `json:"nonce"`
	IAT   json.RawMessage `json:"iat"`
}

// proofClaims reads the claims every proof must carry, each of its type.
func proofClaims(c *claimSet) (*proof, *Error) {
	for _, f := range []struct{ name, value string }{{"jti", c.JTI}, {"htm", c.HTM}, {"htu", c.HTU}, {"ath", c.ATH}} {
		if f.value == "" {
			return nil, invalidProof(ReasonMalformed, "the DPoP proof has no "+f.name+" claim")
		}
	}
	if len(c.JTI) > maxJTIBytes {
		return nil, invalidProof(ReasonMalformed, "the DPoP proof's jti is too long")
	}
	iat, ok := numericDate(c.IAT)
	if !ok {
		return nil, invalidProof(ReasonMalformed, "the DPoP proof has no iat claim")
	}
	pr := &proof{jti: c.JTI, htm: c.HTM, htu: c.HTU, ath: c.ATH, iat: iat}
	if c.Nonce != nil {
		pr.nonce = *c.Nonce
	}
	return pr, nil
}

// numericDate reads a JSON number of seconds since the epoch.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || !(raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// decodeSegment base64url-decodes a JWS segment and decodes its JSON into v.
func decodeSegment(seg string, v any) error {
	data, err := b64.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
