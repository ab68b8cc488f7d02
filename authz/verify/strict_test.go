package verify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

func jsonValid(data []byte) bool { return json.Valid(data) }

// rawSigner signs hand-written header and payload JSON with a key the test
// issuer publishes under kid "raw", so tokens can carry JSON that no encoder
// would produce (duplicate names, odd types) and still verify.
type rawSigner struct {
	t   testing.TB
	key *rsa.PrivateKey
	iss *verifytest.Issuer
}

func newRawSigner(t testing.TB, iss *verifytest.Issuer) *rawSigner {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss.AddRawKey(rawJWK(t, &key.PublicKey, jwkset.JWKMetadataOptions{KID: "raw", ALG: jwkset.AlgRS256}))
	s := rsaSignerOf(t, key, iss)
	return &s
}

func rsaSignerOf(t testing.TB, key *rsa.PrivateKey, iss *verifytest.Issuer) rawSigner {
	return rawSigner{t: t, key: key, iss: iss}
}

// sign returns header.payload.signature for the JSON texts as given.
func (s *rawSigner) sign(header, payload string) string {
	s.t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig, err := jwt.SigningMethodRS256.Sign(in, s.key)
	if err != nil {
		s.t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// claims is a valid claim set for the issuer, with extra JSON members spliced in.
func (s *rawSigner) claims(extra string) string {
	base := fmt.Sprintf(`{"iss":%q,"exp":%d,"sub":"alice"`, s.iss.URL(), time.Now().Add(time.Hour).Unix())
	if extra != "" {
		base += "," + extra
	}
	return base + "}"
}

const rawHeader = `{"alg":"RS256","kid":"raw"}`

func TestDuplicateMembersRejected(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	s := newRawSigner(t, iss)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	// The same signer produces an accepted token: the refusals below are
	// about the duplicates alone.
	mustVerify(t, v, s.sign(rawHeader, s.claims(`"role":"user"`)))
	for name, raw := range map[string]string{
		"header alg twice":   s.sign(`{"alg":"RS256","kid":"raw","alg":"RS256"}`, s.claims("")),
		"header kid twice":   s.sign(`{"alg":"RS256","kid":"other","kid":"raw"}`, s.claims("")),
		"claim sub twice":    s.sign(rawHeader, s.claims(`"sub":"admin"`)),
		"claim iss twice":    s.sign(rawHeader, s.claims(`"iss":"https://evil.example"`)),
		"escaped duplicate":  s.sign(rawHeader, s.claims(`"\u0073ub":"admin"`)),
		"nested duplicate":   s.sign(rawHeader, s.claims(`"roles":{"admin":false,"admin":true}`)),
		"duplicate in array": s.sign(rawHeader, s.claims(`"list":[{"a":1,"a":2}]`)),
		"trailing value":     s.sign(rawHeader, s.claims("")+`{"sub":"admin"}`),
		"nested too deeply":  s.sign(rawHeader, s.claims(`"deep":`+strings.Repeat("[", 40)+strings.Repeat("]", 40))),
	} {
		t.Run(name, func(t *testing.T) { wantReason(t, v, raw, ReasonMalformed) })
	}
	// A header that is not one JSON value does not make a JWT (isJWT).
	wantReason(t, v, s.sign(rawHeader+`{"alg":"none"}`, s.claims("")), ReasonNotJWT)
	// Same names in different objects are not duplicates.
	mustVerify(t, v, s.sign(rawHeader, s.claims(`"a":{"sub":1},"b":[{"sub":2},{"sub":3}]`)))
}

func TestB64FalseRejected(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	s := newRawSigner(t, iss)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	wantReason(t, v, s.sign(`{"alg":"RS256","kid":"raw","b64":false}`, s.claims("")), ReasonMalformed)
	wantReason(t, v, s.sign(`{"alg":"RS256","kid":"raw","b64":"false"}`, s.claims("")), ReasonMalformed)
	// RFC 7797 requires crit with b64, and crit alone is already refused.
	wantReason(t, v, s.sign(`{"alg":"RS256","kid":"raw","b64":false,"crit":["b64"]}`, s.claims("")), ReasonCrit)
	// b64 true is the default meaning and changes nothing.
	mustVerify(t, v, s.sign(`{"alg":"RS256","kid":"raw","b64":true}`, s.claims("")))
}

// exp, nbf and iat must be JSON numbers, whatever else they could be read as.
func TestTimeClaimsMustBeNumbers(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	s := newRawSigner(t, iss)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	future := time.Now().Add(time.Hour).Unix()
	mustVerify(t, v, s.sign(rawHeader, fmt.Sprintf(`{"iss":%q,"exp":%d.5,"nbf":0,"iat":1e3}`, iss.URL(), future)))
	for name, member := range map[string]string{
		"exp string": fmt.Sprintf(`"exp":"%d"`, future),
		"exp bool":   `"exp":true`,
		"exp array":  fmt.Sprintf(`"exp":[%d]`, future),
		"exp object": `"exp":{}`,
		"exp null":   `"exp":null`,
		"nbf string": `"nbf":"0"`,
		"iat string": `"iat":"0"`,
		"iat huge":   `"iat":1e400`,
	} {
		t.Run(name, func(t *testing.T) {
			payload := fmt.Sprintf(`{"iss":%q,%s}`, iss.URL(), member)
			if !strings.HasPrefix(member, `"exp"`) {
				payload = fmt.Sprintf(`{"iss":%q,"exp":%d,%s}`, iss.URL(), future, member)
			}
			wantReason(t, v, s.sign(rawHeader, payload), ReasonMalformed)
		})
	}
}

func TestMaxTokenBytesOption(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	cfg := issuerCfg(iss, "corp", nil)
	capped, err := New([]config.Issuer{cfg}, Options{MaxTokenBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer capped.Close()
	waitFor(t, "capped verifier ready", capped.Ready)
	dflt := readyVerifier(t, cfg)
	medium := iss.Mint(map[string]any{"pad": strings.Repeat("x", 3000)})
	mustVerify(t, dflt, medium)
	e := wantReason(t, capped, medium, ReasonMalformed)
	if !strings.Contains(e.Description, "too large") {
		t.Fatalf("description %q", e.Description)
	}
	mustVerify(t, capped, iss.Mint(nil))
}

// The size cap comes before any decoding: a huge token of garbage is
// refused as too large, not as bad base64.
func TestSizeCapBeforeDecoding(t *testing.T) {
	v := newVerifier(t)
	e := wantReason(t, v, strings.Repeat("%", MaxTokenBytes+1), ReasonMalformed)
	if !strings.Contains(e.Description, "too large") {
		t.Fatalf("description %q: the cap was not checked first", e.Description)
	}
}

func TestCheckJSON(t *testing.T) {
	for doc, ok := range map[string]bool{
		`{}`: true, `[]`: true, `1`: true, `{"a":1,"b":{"a":2}}`: true, `[{"a":1},{"a":1}]`: true,
		`{"a":1,"a":1}`: false, `{"a":{"b":1,"b":1}}`: false, `{"a":1,"\u0061":2}`: false,
		`{"a":1} {"b":2}`: false, `{"a":`: false, `{"a" 1}`: false, ``: false, `{"a":[` + strings.Repeat(`[`, maxJSONDepth) + strings.Repeat(`]`, maxJSONDepth) + `]}`: false,
	} {
		if err := checkJSON([]byte(doc)); (err == nil) != ok {
			t.Errorf("checkJSON(%.40q) = %v, want ok=%v", doc, err, ok)
		}
	}
}

func TestKeyMatchesAlg(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		key  any
		alg  string
		want bool
	}{
		{&rsaKey.PublicKey, "RS256", true}, {&rsaKey.PublicKey, "PS512", true}, {&rsaKey.PublicKey, "ES256", false},
		{&smallRSA.PublicKey, "RS256", false},
		{&p256.PublicKey, "ES256", true}, {&p256.PublicKey, "ES384", false}, {&p384.PublicKey, "ES384", true}, {&p384.PublicKey, "ES256", false},
		{edPub, "EdDSA", true}, {edPub, "ES256", false}, {[]byte("secret"), "HS256", false}, {&p256.PublicKey, "HS256", false},
	} {
		if got := keyMatchesAlg(c.key, c.alg); got != c.want {
			t.Errorf("keyMatchesAlg(%T, %s) = %v, want %v", c.key, c.alg, got, c.want)
		}
	}
}
