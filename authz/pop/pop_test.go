package pop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestValidProofEveryAlgorithm(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		key    crypto.Signer
		method jwt.SigningMethod
	}{
		{newKey(t), jwt.SigningMethodES256},
		{p384, jwt.SigningMethodES384},
		{p521, jwt.SigningMethodES512},
		{rsaKey, jwt.SigningMethodPS256},
		{rsaKey, jwt.SigningMethodPS512},
		{edKey, jwt.SigningMethodEdDSA},
	} {
		t.Run(tc.method.Alg(), func(t *testing.T) {
			raw := validParts(t, tc.key).sign(t, tc.method, tc.key)
			proof, err := testChecker(Options{}).Check(context.Background(), testRequest(raw), "DPoP", testToken, map[string]any{"jkt": jkt(t, tc.key)}, testPolicy())
			if err != nil || proof != ProofDPoP {
				t.Fatalf("Check = %q, %v; want dpop", proof, err)
			}
		})
	}
}

func TestSignMakesAcceptedProof(t *testing.T) {
	key := newKey(t)
	raw, err := Sign(key, ProofParams{Method: "GET", URL: "HTTPS://API.example.com:443/a/../orders?q=1#f", Token: testToken, IssuedAt: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, perr := testChecker(Options{}).Check(context.Background(), testRequest(raw), "dpop", testToken, map[string]any{"jkt": jkt(t, key)}, testPolicy()); perr != nil {
		t.Fatal(perr)
	}
}

// TestEachProofCheckFailsAlone changes one thing of a valid proof at a time.
func TestEachProofCheckFailsAlone(t *testing.T) {
	key, other := newKey(t), newKey(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name   string
		reason string
		proof  func(p proofParts) string
		req    func(r *Request)
	}{
		{name: "typ missing", reason: ReasonTyp, proof: func(p proofParts) string { delete(p.header, "typ"); return p.sign(t, jwt.SigningMethodES256, key) }},
		{name: "typ jwt", reason: ReasonTyp, proof: func(p proofParts) string { p.header["typ"] = "JWT"; return p.sign(t, jwt.SigningMethodES256, key) }},
		{name: "alg not allowed", reason: ReasonAlg, proof: func(p proofParts) string {
			jwk, _ := PublicJWK(rsaKey.Public())
			p.header["jwk"] = jwk
			return p.sign(t, jwt.SigningMethodRS256, rsaKey)
		}},
		{name: "alg HS256", reason: ReasonAlg, proof: func(p proofParts) string { return p.sign(t, jwt.SigningMethodHS256, []byte("secret")) }},
		{name: "alg none", reason: ReasonAlg, proof: func(p proofParts) string { return p.sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType) }},
		{name: "alg unfit for key", reason: ReasonAlg, proof: func(p proofParts) string {
			jwk, _ := PublicJWK(key.Public())
			p.header["jwk"] = jwk
			return p.sign(t, jwt.SigningMethodES384, p384)
		}},
		{name: "jwk missing", reason: ReasonJWK, proof: func(p proofParts) string { delete(p.header, "jwk"); return p.sign(t, jwt.SigningMethodES256, key) }},
		{name: "jwk private", reason: ReasonJWK, proof: func(p proofParts) string {
			p.header["jwk"].(map[string]any)["d"] = b64.EncodeToString(key.D.Bytes())
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "jwk symmetric", reason: ReasonJWK, proof: func(p proofParts) string {
			p.header["jwk"] = map[string]any{"kty": "oct", "k": "c2VjcmV0"}
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "crit", reason: ReasonMalformed, proof: func(p proofParts) string {
			p.header["crit"] = []string{"x"}
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "signature", reason: ReasonSignature, proof: func(p proofParts) string {
			good := p.sign(t, jwt.SigningMethodES256, key)
			p.claims["htm"] = "POST"
			bad := p.sign(t, jwt.SigningMethodES256, key)
			return bad[:strings.LastIndexByte(bad, '.')] + good[strings.LastIndexByte(good, '.'):]
		}},
		{name: "thumbprint", reason: ReasonThumbprint, proof: func(p proofParts) string {
			jwk, _ := PublicJWK(other.Public())
			p.header["jwk"] = jwk
			return p.sign(t, jwt.SigningMethodES256, other)
		}},
		{name: "htm", reason: ReasonHTM, proof: func(p proofParts) string { p.claims["htm"] = "POST"; return p.sign(t, jwt.SigningMethodES256, key) }},
		{name: "htm case", reason: ReasonHTM, proof: func(p proofParts) string { p.claims["htm"] = "get"; return p.sign(t, jwt.SigningMethodES256, key) }},
		{name: "htu path", reason: ReasonHTU, proof: func(p proofParts) string {
			p.claims["htu"] = "https://api.example.com/admin"
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "htu host", reason: ReasonHTU, proof: func(p proofParts) string {
			p.claims["htu"] = "https://evil.example.com/orders"
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "htu scheme", reason: ReasonHTU, req: func(r *Request) { r.Scheme = "http" }},
		{name: "htu port", reason: ReasonHTU, req: func(r *Request) { r.Authority = "api.example.com:8443" }},
		{name: "iat old", reason: ReasonIAT, proof: func(p proofParts) string {
			p.claims["iat"] = testNow.Add(-66 * time.Second).Unix()
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "iat future", reason: ReasonIAT, proof: func(p proofParts) string {
			p.claims["iat"] = testNow.Add(6 * time.Second).Unix()
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "iat string", reason: ReasonMalformed, proof: func(p proofParts) string {
			p.claims["iat"] = "1796666400"
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "ath other token", reason: ReasonATH, proof: func(p proofParts) string {
			p.claims["ath"] = ath("other")
			return p.sign(t, jwt.SigningMethodES256, key)
		}},
		{name: "ath missing", reason: ReasonMalformed, proof: func(p proofParts) string { delete(p.claims, "ath"); return p.sign(t, jwt.SigningMethodES256, key) }},
		{name: "jti missing", reason: ReasonMalformed, proof: func(p proofParts) string { delete(p.claims, "jti"); return p.sign(t, jwt.SigningMethodES256, key) }},
		{name: "not a JWS", reason: ReasonMalformed, proof: func(proofParts) string { return "a.b" }},
		{name: "header not base64", reason: ReasonMalformed, proof: func(proofParts) string { return "!!.e30.c2ln" }},
		{name: "no proof", reason: ReasonMissing, req: func(r *Request) { r.Proofs = nil }},
		{name: "empty proof", reason: ReasonMissing, req: func(r *Request) { r.Proofs = []string{" "} }},
		{name: "two proofs", reason: ReasonMultiple, req: func(r *Request) { r.Proofs = append(r.Proofs, r.Proofs[0]) }},
		{name: "two proofs joined", reason: ReasonMultiple, req: func(r *Request) { r.Proofs = []string{r.Proofs[0] + "," + r.Proofs[0]} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := validParts(t, key)
			raw := parts.sign(t, jwt.SigningMethodES256, key)
			if tc.proof != nil {
				raw = tc.proof(validParts(t, key))
			}
			req := testRequest(raw)
			if tc.req != nil {
				tc.req(&req)
			}
			_, err := testChecker(Options{}).Check(context.Background(), req, "DPoP", testToken, map[string]any{"jkt": jkt(t, key)}, testPolicy())
			wantErr(t, err, KindInvalidProof, tc.reason)
		})
	}
}

func TestIATWithinLeewayPasses(t *testing.T) {
	key := newKey(t)
	for _, iat := range []time.Time{testNow.Add(-64 * time.Second), testNow.Add(4 * time.Second)} {
		p := validParts(t, key)
		p.claims["iat"] = iat.Unix()
		raw := p.sign(t, jwt.SigningMethodES256, key)
		if _, err := testChecker(Options{}).Check(context.Background(), testRequest(raw), "DPoP", testToken, map[string]any{"jkt": jkt(t, key)}, testPolicy()); err != nil {
			t.Errorf("iat %v: %v", iat, err)
		}
	}
}

func TestForwardedProtoAndNormalisedURL(t *testing.T) {
	key := newKey(t)
	p := validParts(t, key)
	p.claims["htu"] = "HTTPS://Api.Example.COM:443/%6Frders/./#frag"
	raw := p.sign(t, jwt.SigningMethodES256, key)
	req := Request{Method: "GET", Scheme: RequestScheme("https, http", "http"), Authority: "api.example.com", Path: "/orders/?a=b", Proofs: []string{raw}}
	if _, err := testChecker(Options{}).Check(context.Background(), req, "dpop", testToken, map[string]any{"jkt": jkt(t, key)}, testPolicy()); err != nil {
		t.Fatal(err)
	}
}

func TestReplayRefused(t *testing.T) {
	key := newKey(t)
	c := testChecker(Options{})
	raw := validParts(t, key).sign(t, jwt.SigningMethodES256, key)
	cnf := map[string]any{"jkt": jkt(t, key)}
	if _, err := c.Check(context.Background(), testRequest(raw), "DPoP", testToken, cnf, testPolicy()); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check(context.Background(), testRequest(raw), "DPoP", testToken, cnf, testPolicy())
	wantErr(t, err, KindInvalidProof, ReasonReplay)
}

// TestFailedProofKeepsItsJTI: a proof refused for another reason must not
// spend its jti, or a client's retry of a fixed request would be refused.
func TestFailedProofKeepsItsJTI(t *testing.T) {
	key := newKey(t)
	c := testChecker(Options{})
	raw := validParts(t, key).sign(t, jwt.SigningMethodES256, key)
	cnf := map[string]any{"jkt": jkt(t, key)}
	bad := testRequest(raw)
	bad.Method = "POST"
	_, err := c.Check(context.Background(), bad, "DPoP", testToken, cnf, testPolicy())
	wantErr(t, err, KindInvalidProof, ReasonHTM)
	if _, err := c.Check(context.Background(), testRequest(raw), "DPoP", testToken, cnf, testPolicy()); err != nil {
		t.Fatal(err)
	}
}

func TestReplayStoreFailure(t *testing.T) {
	key := newKey(t)
	raw := validParts(t, key).sign(t, jwt.SigningMethodES256, key)
	cnf := map[string]any{"jkt": jkt(t, key)}
	_, err := testChecker(Options{Replay: failingStore{}}).Check(context.Background(), testRequest(raw), "DPoP", testToken, cnf, testPolicy())
	wantErr(t, err, KindUnavailable, ReasonStore)
	if _, err := testChecker(Options{Replay: failingStore{}, FailOpen: true}).Check(context.Background(), testRequest(raw), "DPoP", testToken, cnf, testPolicy()); err != nil {
		t.Fatalf("on_store_error allow: %v", err)
	}
}

func TestDowngradesRefused(t *testing.T) {
	key := newKey(t)
	raw := validParts(t, key).sign(t, jwt.SigningMethodES256, key)
	bound := map[string]any{"jkt": jkt(t, key)}
	required := testPolicy()
	required.Required = true
	for _, tc := range []struct {
		name, scheme string
		cnf          any
		policy       Policy
		reason       string
	}{
		{"bound as Bearer", "Bearer", bound, testPolicy(), ReasonDowngrade},
		{"bound from a cookie", "", bound, testPolicy(), ReasonDowngrade},
		{"DPoP scheme unbound", "DPoP", nil, testPolicy(), ReasonUnbound},
		{"DPoP scheme certificate-bound", "DPoP", map[string]any{"x5t#S256": "abc"}, testPolicy(), ReasonUnbound},
		{"required unbound", "Bearer", nil, required, ReasonPoPRequired},
		{"cnf jwk", "Bearer", map[string]any{"jwk": map[string]any{"kty": "EC"}}, testPolicy(), ReasonCnfUnsupported},
		{"cnf jkt plus jwk", "DPoP", map[string]any{"jkt": jkt(t, key), "kid": "k"}, testPolicy(), ReasonCnfUnsupported},
		{"cnf string", "Bearer", "x", testPolicy(), ReasonCnf},
		{"cnf empty", "Bearer", map[string]any{}, testPolicy(), ReasonCnf},
		{"cnf jkt number", "DPoP", map[string]any{"jkt": 1}, testPolicy(), ReasonCnf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testChecker(Options{}).Check(context.Background(), testRequest(raw), tc.scheme, testToken, tc.cnf, tc.policy)
			wantErr(t, err, KindInvalidToken, tc.reason)
		})
	}
}

func TestUnboundBearerPasses(t *testing.T) {
	proof, err := testChecker(Options{}).Check(context.Background(), testRequest(), "Bearer", testToken, nil, testPolicy())
	if err != nil || proof != "" {
		t.Fatalf("Check = %q, %v", proof, err)
	}
}

func TestNonces(t *testing.T) {
	key := newKey(t)
	nonces := NewNonces("0123456789abcdef0123456789abcdef", time.Minute)
	p := testPolicy()
	p.Nonce = true
	cnf := map[string]any{"jkt": jkt(t, key)}
	check := func(nonce string) *Error {
		parts := validParts(t, key)
		if nonce != "" {
			parts.claims["nonce"] = nonce
		}
		raw := parts.sign(t, jwt.SigningMethodES256, key)
		_, err := testChecker(Options{Nonces: nonces}).Check(context.Background(), testRequest(raw), "DPoP", testToken, cnf, p)
		return err
	}
	err := check("")
	wantErr(t, err, KindUseNonce, ReasonNonce)
	if !nonces.Valid(err.Nonce, testNow) {
		t.Fatalf("use_dpop_nonce carries nonce %q that is not valid", err.Nonce)
	}
	if err := check(err.Nonce); err != nil {
		t.Fatalf("proof with the server's nonce: %v", err)
	}
	if err := check(nonces.Current(testNow.Add(-time.Minute))); err != nil {
		t.Fatalf("nonce of the previous slot: %v", err)
	}
	wantErr(t, check(nonces.Current(testNow.Add(-2*time.Minute))), KindUseNonce, ReasonNonce)
	wantErr(t, check(NewNonces("another secret, just as long as the first", time.Minute).Current(testNow)), KindUseNonce, ReasonNonce)
	wantErr(t, check("not-a-nonce"), KindUseNonce, ReasonNonce)
}

func TestNonceSharedByReplicas(t *testing.T) {
	a := NewNonces("0123456789abcdef0123456789abcdef", time.Minute)
	b := NewNonces("0123456789abcdef0123456789abcdef", time.Minute)
	if n := a.Current(testNow); !b.Valid(n, testNow.Add(30*time.Second)) {
		t.Fatal("a nonce from one replica is refused by another")
	}
}
