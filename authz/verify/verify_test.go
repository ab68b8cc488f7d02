package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

func TestVerifyEachAlgorithm(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	// Mint once per alg first so every key is in the JWKS before it loads.
	tokens := map[string]string{}
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		tokens[alg] = iss.MintWith(alg, nil, map[string]any{"sub": "alice", "jti": "id-" + alg, "scope": "orders:read orders:write"})
	}
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	for alg, raw := range tokens {
		t.Run(alg, func(t *testing.T) {
			tok := mustVerify(t, v, raw)
			if tok.Issuer != "corp" || tok.Subject != "alice" || tok.ID != "id-"+alg {
				t.Fatalf("token = issuer %q sub %q jti %q", tok.Issuer, tok.Subject, tok.ID)
			}
			if tok.Header["alg"] != alg || tok.Header["kid"] != iss.KID(alg) {
				t.Fatalf("header = %v", tok.Header)
			}
			if strings.Join(tok.Scopes, ",") != "orders:read,orders:write" {
				t.Fatalf("scopes = %v", tok.Scopes)
			}
			if _, ok := tok.Claims["exp"].(json.Number); !ok {
				t.Fatalf("exp claim is %T, want json.Number", tok.Claims["exp"])
			}
			exp, _ := tok.Claims["exp"].(json.Number).Int64()
			iat, _ := tok.Claims["iat"].(json.Number).Int64()
			if !tok.Expiry.Equal(time.Unix(exp, 0)) || !tok.IssuedAt.Equal(time.Unix(iat, 0)) {
				t.Fatalf("Expiry %v IssuedAt %v, want %d %d", tok.Expiry, tok.IssuedAt, exp, iat)
			}
			signed := raw[:strings.LastIndex(raw, ".")]
			if tok.ContentHash != sha256.Sum256([]byte(signed)) {
				t.Fatal("ContentHash is not the SHA-256 of header.payload")
			}
		})
	}
}

func TestTokenFields(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.Leeway = 7 * time.Second }))
	tok := mustVerify(t, v, iss.Mint(map[string]any{"nested": map[string]any{"n": 12345678901234567}}))
	if tok.Leeway != 7*time.Second {
		t.Fatalf("Leeway = %v", tok.Leeway)
	}
	if tok.ID != "" || tok.Subject != "" || tok.Scopes != nil {
		t.Fatalf("absent jti/sub/scope gave %q %q %v", tok.ID, tok.Subject, tok.Scopes)
	}
	// json.Number keeps integers exact where float64 would round them.
	if n := tok.Claims["nested"].(map[string]any)["n"]; n != json.Number("12345678901234567") {
		t.Fatalf("nested number = %#v", n)
	}
}

func TestScopes(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	cases := []struct {
		claims map[string]any
		want   string
	}{
		{map[string]any{"scope": " a  b "}, "a,b"},
		{map[string]any{"scp": []any{"a", "b"}}, "a,b"},
		{map[string]any{"scp": "a b"}, "a,b"},
		{map[string]any{"scp": []any{"a", 3, "b"}}, "a,b"},
		{map[string]any{"scope": "x", "scp": []any{"y"}}, "x"},
	}
	for _, c := range cases {
		tok := mustVerify(t, v, iss.Mint(c.claims))
		if got := strings.Join(tok.Scopes, ","); got != c.want {
			t.Errorf("claims %v: scopes %q, want %q", c.claims, got, c.want)
		}
	}
}

func TestContentHashIgnoresSignature(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	claims := map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "sub": "a"}
	// ECDSA signatures are randomised: same signed content, different tokens.
	a, b := iss.MintWith("ES256", nil, claims), iss.MintWith("ES256", nil, claims)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	if a == b {
		t.Fatal("expected two different ES256 signatures")
	}
	if mustVerify(t, v, a).ContentHash != mustVerify(t, v, b).ContentHash {
		t.Fatal("ContentHash differs for the same header and payload")
	}
}

func TestUnknownIssuer(t *testing.T) {
	iss, other := verifytest.NewIssuer(t), verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	wantReason(t, v, other.Mint(nil), ReasonUnknownIssuer)
	wantReason(t, v, iss.Mint(map[string]any{"iss": nil}), ReasonUnknownIssuer)
	wantReason(t, v, iss.Mint(map[string]any{"iss": iss.URL() + "/"}), ReasonUnknownIssuer)
	wantReason(t, v, iss.Mint(map[string]any{"iss": 42}), ReasonMalformed)
}

// Two issuers with the same kid: a token naming issuer A but signed with B's
// key must be checked with A's keys only.
func TestKeysAreNotSharedBetweenIssuers(t *testing.T) {
	a, b := verifytest.NewIssuer(t), verifytest.NewIssuer(t)
	if a.KID("RS256") != b.KID("RS256") {
		t.Fatalf("test wants equal kids, got %q %q", a.KID("RS256"), b.KID("RS256"))
	}
	v := readyVerifier(t, issuerCfg(a, "a", nil), issuerCfg(b, "b", nil))
	if got := mustVerify(t, v, b.Mint(nil)).Issuer; got != "b" {
		t.Fatalf("issuer = %q, want b", got)
	}
	wantReason(t, v, b.Mint(map[string]any{"iss": a.URL()}), ReasonBadSignature)
	wantReason(t, v, b.MintWith("RS256", map[string]any{"kid": nil}, map[string]any{"iss": a.URL()}), ReasonBadSignature)
}

func TestBadSignature(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	raw := iss.Mint(map[string]any{"sub": "alice"})
	parts := strings.Split(raw, ".")
	payload := encodeJSON(t, map[string]any{"iss": iss.URL(), "sub": "admin", "exp": time.Now().Add(time.Hour).Unix()})
	wantReason(t, v, parts[0]+"."+payload+"."+parts[2], ReasonBadSignature)
	wantReason(t, v, parts[0]+"."+parts[1]+".", ReasonBadSignature)
	// Same kid, different key.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	wantReason(t, v, sign(t, jwt.SigningMethodRS256, key, map[string]any{"kid": iss.KID("RS256")}, iss.URL()), ReasonBadSignature)
}

func TestAlgorithmAllowlist(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	es := iss.MintWith("ES256", nil, nil)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.Algorithms = []string{"ES256"} }))
	mustVerify(t, v, es)
	wantReason(t, v, iss.Mint(nil), ReasonAlgNotAllowed)
}

func TestAlgNone(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	payload := encodeJSON(t, map[string]any{"iss": iss.URL(), "exp": time.Now().Add(time.Hour).Unix()})
	for _, alg := range []string{"none", "None", "NONE"} {
		hdr := encodeJSON(t, map[string]any{"alg": alg, "kid": iss.KID("RS256")})
		wantReason(t, v, hdr+"."+payload+".", ReasonAlgNotAllowed)
	}
	// jwt's own unsecured token, with its magic key.
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": iss.URL(), "exp": time.Now().Add(time.Hour).Unix()})
	raw, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	wantReason(t, v, raw, ReasonAlgNotAllowed)
}

// The classic key-confusion attack: HS256 keyed with the issuer's public key.
func TestHMACWithPublicKeyFails(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	pub := iss.PublicKey("RS256").(*rsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, secret := range [][]byte{pemBytes, der, pub.N.Bytes()} {
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS512} {
			wantReason(t, v, sign(t, m, secret, map[string]any{"kid": iss.KID("RS256")}, iss.URL()), ReasonAlgNotAllowed)
		}
	}
	// Even configuring HMAC is refused.
	if _, err := New([]config.Issuer{issuerCfg(iss, "corp", func(c *config.Issuer) { c.Algorithms = []string{"HS256"} })}, Options{}); err == nil {
		t.Fatal("New accepted HS256 in algorithms")
	}
}

func TestCritHeaderRejected(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	wantReason(t, v, iss.MintWith("RS256", map[string]any{"crit": []string{"exp"}}, nil), ReasonCrit)
}

func TestMalformed(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	good := iss.Mint(nil)
	parts := strings.Split(good, ".")
	// Not shaped as a JWT (see isJWT): with no introspecting issuer, refused as such.
	for name, raw := range map[string]string{
		"empty":          "",
		"two segments":   parts[0] + "." + parts[1],
		"four segments":  good + ".x",
		"header not obj": encodeJSON(t, []int{1}) + "." + parts[1] + "." + parts[2],
	} {
		t.Run(name, func(t *testing.T) { wantReason(t, v, raw, ReasonNotJWT) })
	}
	for name, raw := range map[string]string{
		"bad base64":    parts[0] + ".%%%." + parts[2],
		"padded base64": parts[0] + "=." + parts[1] + "." + parts[2],
		"payload array": parts[0] + "." + encodeJSON(t, []int{1}) + "." + parts[2],
		"no alg":        encodeJSON(t, map[string]any{"kid": "x"}) + "." + parts[1] + "." + parts[2],
		"too large":     iss.Mint(map[string]any{"pad": strings.Repeat("x", MaxTokenBytes)}),
		// Same signature bytes, another spelling: refused so a token has one form.
		"non-canonical signature": good[:len(good)-1] + respell(good[len(good)-1:]),
	} {
		t.Run(name, func(t *testing.T) { wantReason(t, v, raw, ReasonMalformed) })
	}
}

// respell flips the lowest bit of a final base64url character, which for an
// RS256 signature (4 padding bits) decodes to the same bytes unless strict.
func respell(c string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return string(alphabet[strings.Index(alphabet, c)^1])
}

func TestClaimTypes(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	future := fmt.Sprint(time.Now().Add(time.Hour).Unix())
	for name, claims := range map[string]map[string]any{
		"exp string":  {"exp": future},
		"nbf string":  {"nbf": "0"},
		"iat string":  {"iat": "0"},
		"exp null":    {"exp": json.RawMessage("null")},
		"sub number":  {"sub": 7},
		"jti object":  {"jti": map[string]any{}},
		"kid integer": {},
	} {
		t.Run(name, func(t *testing.T) {
			var hdr map[string]any
			if name == "kid integer" {
				hdr = map[string]any{"kid": 1}
			}
			wantReason(t, v, iss.MintWith("RS256", hdr, claims), ReasonMalformed)
		})
	}
}

func TestTimeClaims(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.Leeway = 30 * time.Second }))
	now := time.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	wantReason(t, v, iss.Mint(map[string]any{"iat": at(-time.Hour), "exp": at(-time.Minute)}), ReasonExpired)
	mustVerify(t, v, iss.Mint(map[string]any{"iat": at(-time.Hour), "exp": at(-10 * time.Second)}))
	wantReason(t, v, iss.Mint(map[string]any{"nbf": at(time.Minute)}), ReasonNotYetValid)
	mustVerify(t, v, iss.Mint(map[string]any{"nbf": at(10 * time.Second)}))
	wantReason(t, v, iss.Mint(map[string]any{"iat": at(time.Minute)}), ReasonNotYetValid)
	mustVerify(t, v, iss.Mint(map[string]any{"iat": at(10 * time.Second)}))
	// exp 0 is 1970, not "absent".
	wantReason(t, v, iss.Mint(map[string]any{"exp": 0, "iat": 0}), ReasonExpired)

	strict := readyVerifier(t, issuerCfg(iss, "corp", nil))
	wantReason(t, strict, iss.Mint(map[string]any{"iat": at(-time.Hour), "exp": at(-10 * time.Second)}), ReasonExpired)
}

func TestAudienceAnyOf(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.Audiences = []string{"orders", "billing"} }))
	mustVerify(t, v, iss.Mint(map[string]any{"aud": "billing"}))
	mustVerify(t, v, iss.Mint(map[string]any{"aud": []any{"other", "orders"}}))
	wantReason(t, v, iss.Mint(map[string]any{"aud": "other"}), ReasonAudience)
	wantReason(t, v, iss.Mint(map[string]any{"aud": []any{}}), ReasonAudience)
	wantReason(t, v, iss.Mint(nil), ReasonAudience)

	open := readyVerifier(t, issuerCfg(iss, "corp", nil))
	mustVerify(t, open, iss.Mint(map[string]any{"aud": "anything"}))
}

func TestExpirationRequired(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	wantReason(t, v, iss.Mint(map[string]any{"exp": nil}), ReasonMissingExp)

	no := false
	lax := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.RequireExpiration = &no }))
	tok := mustVerify(t, lax, iss.Mint(map[string]any{"exp": nil}))
	if !tok.Expiry.IsZero() {
		t.Fatalf("Expiry = %v, want zero", tok.Expiry)
	}
}

func TestMaxLifetime(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	no := false
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.MaxLifetime = 10 * time.Minute; c.RequireExpiration = &no }))
	now := time.Now()
	mustVerify(t, v, iss.Mint(map[string]any{"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}))
	wantReason(t, v, iss.Mint(map[string]any{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}), ReasonLifetime)
	wantReason(t, v, iss.Mint(map[string]any{"iat": nil}), ReasonLifetime)
	wantReason(t, v, iss.Mint(map[string]any{"exp": nil}), ReasonLifetime)
}

func TestTyp(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", func(c *config.Issuer) { c.Typ = "at+jwt" }))
	mustVerify(t, v, iss.MintWith("RS256", map[string]any{"typ": "at+jwt"}, nil))
	mustVerify(t, v, iss.MintWith("RS256", map[string]any{"typ": "application/AT+JWT"}, nil))
	wantReason(t, v, iss.MintWith("RS256", map[string]any{"typ": "JWT"}, nil), ReasonTyp)
	wantReason(t, v, iss.MintWith("RS256", map[string]any{"typ": nil}, nil), ReasonTyp)
}

// Header parameters that carry or point at keys must never be used: a token
// signed by an attacker who embeds or links their own key fails, and the
// attacker's server is never contacted.
func TestKeyHeadersIgnored(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	var attackerHits atomic.Int64
	attackerKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwk, err := jwkset.NewJWKFromKey(&attackerKey.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "evil", ALG: jwkset.AlgRS256}})
	if err != nil {
		t.Fatal(err)
	}
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		_ = json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	}))
	defer attacker.Close()
	cert := selfSigned(t, attackerKey)
	headers := map[string]any{
		"jwk": jwk.Marshal(),
		"jku": attacker.URL,
		"x5u": attacker.URL,
		"x5c": []string{base64.StdEncoding.EncodeToString(cert)},
	}
	for _, kid := range []string{"evil", iss.KID("RS256"), ""} {
		h := map[string]any{"kid": kid}
		for k, val := range headers {
			h[k] = val
		}
		if kid == "" {
			delete(h, "kid")
		}
		raw := sign(t, jwt.SigningMethodRS256, attackerKey, h, iss.URL())
		if _, err := v.Verify(context.Background(), raw); err == nil {
			t.Fatalf("kid %q: token signed by the attacker's embedded key was accepted", kid)
		}
	}
	if attackerHits.Load() != 0 {
		t.Fatalf("attacker server was contacted %d times", attackerHits.Load())
	}
}

func TestNoKIDTriesMatchingKeys(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	es := iss.MintWith("ES256", map[string]any{"kid": nil}, nil)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	mustVerify(t, v, iss.MintWith("RS256", map[string]any{"kid": nil}, nil))
	mustVerify(t, v, es)
	// No loaded key may sign PS256 (the RSA key says RS256): one refresh finds the new key.
	mustVerify(t, v, iss.MintWith("PS256", map[string]any{"kid": nil}, nil))
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wantReason(t, v, sign(t, jwt.SigningMethodES256, other, nil, iss.URL()), ReasonBadSignature)
}

// sign builds a token with method and key, extra header entries and the given iss.
func sign(t testing.TB, m jwt.SigningMethod, key any, header map[string]any, issuer string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims{"iss": issuer, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	for k, v := range header {
		tok.Header[k] = v
	}
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return raw
}

func encodeJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func selfSigned(t testing.TB, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestNewRefusesBadConfig(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	good := issuerCfg(iss, "corp", nil)
	for name, cfgs := range map[string][]config.Issuer{
		"no issuer":    {issuerCfg(iss, "corp", func(c *config.Issuer) { c.Issuer = "" })},
		"bad url":      {issuerCfg(iss, "corp", func(c *config.Issuer) { c.JWKSURL = "file:///etc/passwd" })},
		"duplicate":    {good, good},
		"alg none":     {issuerCfg(iss, "corp", func(c *config.Issuer) { c.Algorithms = []string{"none"} })},
		"unknown algo": {issuerCfg(iss, "corp", func(c *config.Issuer) { c.Algorithms = []string{"RS1"} })},
	} {
		if _, err := New(cfgs, Options{}); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestNoIssuersIsReadyAndRefusesTokens(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := newVerifier(t)
	if !v.Ready() {
		t.Fatal("a verifier with no issuers should be ready")
	}
	wantReason(t, v, iss.Mint(nil), ReasonUnknownIssuer)
}

func TestConcurrentVerify(t *testing.T) {
	iss := verifytest.NewIssuer(t)
	v := readyVerifier(t, issuerCfg(iss, "corp", nil))
	raw := iss.Mint(map[string]any{"sub": "alice"})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), raw); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
