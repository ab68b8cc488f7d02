package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/introspect/introspecttest"
	"github.com/tokenwise/tokenwise/authz/pop"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// popPolicy allows any verified token and tells the upstream which proof it
// came with, so the tests see input.token.proof.
const popPolicy = `package envoy.authz

default allow := false

allow := {"allowed": true, "headers": {"x-proof": input.token.proof}} if input.token.proof != null

allow := {"allowed": true, "headers": {"x-proof": "none"}} if {
	input.token
	input.token.proof == null
}
`

// orderURL is the URL envoyRequest's requests go to.
const orderURL = "http://shop.example.com/orders/1"

// dpopClient is a client holding a DPoP key and a token bound to it.
type dpopClient struct {
	t     *testing.T
	key   *ecdsa.PrivateKey
	token string
}

func newDPoPClient(t *testing.T, h *harness) *dpopClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := pop.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	token := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "cnf": map[string]any{"jkt": jkt}})
	return &dpopClient{t: t, key: key, token: token}
}

// proof signs a proof for p with the client's key; empty fields get the
// request's method, URL and the client's token.
func (c *dpopClient) proof(p pop.ProofParams) string {
	c.t.Helper()
	if p.Method == "" {
		p.Method = "GET"
	}
	if p.URL == "" {
		p.URL = orderURL
	}
	if p.Token == "" {
		p.Token = c.token
	}
	s, err := pop.Sign(c.key, p)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// request is GET /orders/1 with the DPoP scheme and the given DPoP headers.
func (c *dpopClient) request(proofs ...string) map[string]string {
	return map[string]string{"authorization": "DPoP " + c.token, "dpop": strings.Join(proofs, ",")}
}

// craft signs a proof with any header and claims, for the checks Sign
// cannot fail on its own.
func craft(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodClaims are a valid proof's claims for c's GET /orders/1.
func (c *dpopClient) goodClaims() jwt.MapClaims {
	sum := sha256.Sum256([]byte(c.token))
	return jwt.MapClaims{"jti": time.Now().Format(time.RFC3339Nano), "htm": "GET", "htu": orderURL,
		"iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(sum[:])}
}

func (c *dpopClient) goodHeader() map[string]any {
	jwk, _ := pop.PublicJWK(c.key.Public())
	return map[string]any{"typ": "dpop+jwt", "jwk": jwk}
}

func startPoP(t *testing.T, edit ...func(*config.Config)) *harness {
	t.Helper()
	h := startPolicy(t, popPolicy, edit...)
	h.waitReady()
	return h
}

func TestADPoPBoundTokenWithAFreshProofIsAllowed(t *testing.T) {
	h := startPoP(t)
	c := newDPoPClient(t, h)
	resp := h.check(envoyRequest("GET", "/orders/1?expand=1", c.request(c.proof(pop.ProofParams{}))))
	if a := read(resp); !a.allowed || a.headers["x-proof"] != "dpop" {
		t.Fatalf("a valid proof: %+v", a)
	}
	if added := resp.GetOkResponse().GetResponseHeadersToAdd(); len(added) != 0 {
		t.Errorf("without dpop_nonce the answer carries %v", added)
	}
	// Behind a TLS edge: Envoy sets x-forwarded-proto, the proof names https.
	req := c.request(c.proof(pop.ProofParams{URL: "https://SHOP.example.com:443/orders/./1"}))
	req["x-forwarded-proto"] = "https"
	if a := read(h.check(envoyRequest("GET", "/orders/1", req))); !a.allowed {
		t.Fatalf("https behind the edge: %+v", a)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"proof":"dpop"`) {
		t.Errorf("the decision log does not say which proof was checked:\n%s", logs)
	}
}

// TestEachDPoPCheckFailsOnItsOwn changes one thing of a valid request at a time.
func TestEachDPoPCheckFailsOnItsOwn(t *testing.T) {
	h := startPoP(t)
	c := newDPoPClient(t, h)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaJWK, _ := pop.PublicJWK(rsaKey.Public())
	withHeader := func(name string, v any) map[string]any {
		hd := c.goodHeader()
		hd[name] = v
		return hd
	}
	withClaim := func(name string, v any) jwt.MapClaims {
		cl := c.goodClaims()
		if v == nil {
			delete(cl, name)
		} else {
			cl[name] = v
		}
		return cl
	}
	privateJWK := c.goodHeader()["jwk"].(map[string]any)
	privateJWK["d"] = base64.RawURLEncoding.EncodeToString(c.key.D.Bytes())
	for _, tc := range []struct {
		name, want string
		headers    map[string]string
	}{
		{"no DPoP header", "no DPoP proof", map[string]string{"authorization": "DPoP " + c.token}},
		{"two DPoP headers", "exactly one DPoP header", c.request(c.proof(pop.ProofParams{}), c.proof(pop.ProofParams{}))},
		{"typ", "typ", c.request(craft(t, jwt.SigningMethodES256, c.key, withHeader("typ", "JWT"), c.goodClaims()))},
		{"alg outside dpop_algorithms", "alg", c.request(craft(t, jwt.SigningMethodRS256, rsaKey, withHeader("jwk", rsaJWK), c.goodClaims()))},
		{"alg HS256", "alg", c.request(craft(t, jwt.SigningMethodHS256, []byte("k"), c.goodHeader(), c.goodClaims()))},
		{"private jwk", "private key", c.request(craft(t, jwt.SigningMethodES256, c.key, withHeader("jwk", privateJWK), c.goodClaims()))},
		{"no jwk", "no jwk", c.request(craft(t, jwt.SigningMethodES256, c.key, withHeader("jwk", nil), c.goodClaims()))},
		{"signature", "signature", c.request(resign(craft(t, jwt.SigningMethodES256, c.key, c.goodHeader(), withClaim("htm", "POST")), c.proof(pop.ProofParams{})))},
		{"key not the token's", "not the key the token is bound to", c.request(mustSign(t, other, pop.ProofParams{Method: "GET", URL: orderURL, Token: c.token}))},
		{"htm", "htm", c.request(c.proof(pop.ProofParams{Method: "POST"}))},
		{"htu path", "htu", c.request(c.proof(pop.ProofParams{URL: "http://shop.example.com/orders/2"}))},
		{"htu scheme", "htu", c.request(c.proof(pop.ProofParams{URL: "https://shop.example.com/orders/1"}))},
		{"htu host", "htu", c.request(c.proof(pop.ProofParams{URL: "http://evil.example.com/orders/1"}))},
		{"iat too old", "too old", c.request(c.proof(pop.ProofParams{IssuedAt: time.Now().Add(-2 * time.Minute)}))},
		{"iat in the future", "future", c.request(c.proof(pop.ProofParams{IssuedAt: time.Now().Add(time.Minute)}))},
		{"ath of another token", "ath", c.request(c.proof(pop.ProofParams{Token: "another-token"}))},
		{"no ath", "ath", c.request(craft(t, jwt.SigningMethodES256, c.key, c.goodHeader(), withClaim("ath", nil)))},
		{"no jti", "jti", c.request(craft(t, jwt.SigningMethodES256, c.key, c.goodHeader(), withClaim("jti", nil)))},
		{"not a JWS", "compact JWS", c.request("not-a-proof")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := read(h.check(envoyRequest("GET", "/orders/1", tc.headers)))
			www := a.headers["www-authenticate"]
			if a.allowed || a.status != 401 || a.errorField() != "invalid_dpop_proof" ||
				!strings.HasPrefix(www, `DPoP realm="tokenwise", error="invalid_dpop_proof"`) ||
				!strings.Contains(www, `algs="ES256 ES384 ES512 PS256 PS384 PS512 EdDSA"`) {
				t.Fatalf("want 401 invalid_dpop_proof with a DPoP challenge; got %+v", a)
			}
			if !strings.Contains(www, tc.want) {
				t.Errorf("error_description does not say %q: %s", tc.want, www)
			}
		})
	}
}

// resign puts good's signature on bad's header and claims.
func resign(bad, good string) string {
	return bad[:strings.LastIndexByte(bad, '.')] + good[strings.LastIndexByte(good, '.'):]
}

func mustSign(t *testing.T, key crypto.Signer, p pop.ProofParams) string {
	t.Helper()
	s, err := pop.Sign(key, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBoundTokensCannotBeDowngraded(t *testing.T) {
	h := startPoP(t)
	c := newDPoPClient(t, h)
	unbound := h.issuer.Mint(map[string]any{"sub": "bob", "aud": "orders-api"})
	jwkBound := h.issuer.Mint(map[string]any{"sub": "carol", "aud": "orders-api", "cnf": map[string]any{"jwk": map[string]any{"kty": "EC"}}})
	for _, tc := range []struct {
		name, want string
		headers    map[string]string
	}{
		{"DPoP-bound as Bearer", "the token is bound to a DPoP key", bearer(c.token)},
		{"DPoP-bound as Bearer with a valid proof", "the token is bound to a DPoP key",
			map[string]string{"authorization": "Bearer " + c.token, "dpop": c.proof(pop.ProofParams{})}},
		{"DPoP scheme, unbound token", "DPoP-bound token", map[string]string{"authorization": "DPoP " + unbound, "dpop": c.proof(pop.ProofParams{Token: unbound})}},
		{"a binding tokenwise cannot check", "cannot check", bearer(jwkBound)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := read(h.check(envoyRequest("GET", "/orders/1", tc.headers)))
			www := a.headers["www-authenticate"]
			if a.allowed || a.status != 401 || a.errorField() != "invalid_token" || !strings.HasPrefix(www, `Bearer realm="tokenwise", error="invalid_token"`) {
				t.Fatalf("want 401 invalid_token with a Bearer challenge; got %+v", a)
			}
			if !strings.Contains(www, tc.want) {
				t.Errorf("error_description does not say %q: %s", tc.want, www)
			}
		})
	}
	if a := read(h.check(envoyRequest("GET", "/orders/1", bearer(unbound)))); !a.allowed || a.headers["x-proof"] != "none" {
		t.Errorf("an unbound Bearer token under proof_of_possession optional: %+v", a)
	}
}

func TestProofOfPossessionRequired(t *testing.T) {
	h := startPoP(t, func(c *config.Config) {
		c.Issuers[0].ProofOfPossession = config.ProofRequired
		c.Issuers[0].DPoPAlgorithms = []string{"ES256"}
	})
	unbound := h.issuer.Mint(map[string]any{"sub": "bob", "aud": "orders-api"})
	a := read(h.check(envoyRequest("GET", "/orders/1", bearer(unbound))))
	if a.status != 401 || a.errorField() != "invalid_token" || !strings.Contains(a.headers["www-authenticate"], "must be bound") {
		t.Errorf("an unbound token where proof is required: %+v", a)
	}
	a = read(h.check(envoyRequest("GET", "/orders/1", nil)))
	if a.status != 401 || a.headers["www-authenticate"] != `DPoP realm="tokenwise", algs="ES256"` {
		t.Errorf("no token where proof is required: %+v", a)
	}
	c := newDPoPClient(t, h)
	if a := read(h.check(envoyRequest("GET", "/orders/1", c.request(c.proof(pop.ProofParams{}))))); !a.allowed {
		t.Errorf("a proven token where proof is required: %+v", a)
	}
}

func TestADPoPProofIsAcceptedOnce(t *testing.T) {
	h := startPoP(t)
	c := newDPoPClient(t, h)
	req := c.request(c.proof(pop.ProofParams{}))
	if a := read(h.check(envoyRequest("GET", "/orders/1", req))); !a.allowed {
		t.Fatalf("first use: %+v", a)
	}
	a := read(h.check(envoyRequest("GET", "/orders/1", req)))
	if a.status != 401 || a.errorField() != "invalid_dpop_proof" || !strings.Contains(a.headers["www-authenticate"], "already been used") {
		t.Fatalf("replay: %+v", a)
	}
}

func TestADPoPProofIsAcceptedOnceAcrossReplicasSharingRedis(t *testing.T) {
	redis := redistest.Start(t)
	first := startPoP(t, redisStore(redis.Addr()))
	second := startPoP(t, redisStore(redis.Addr()), func(c *config.Config) {
		c.Issuers[0] = first.issuer.Config("corp")
		c.Issuers[0].Audiences = []string{"orders-api"}
	})
	second.waitReady()
	f := fleet{first, second}
	c := newDPoPClient(t, first)
	for i := range 5 {
		req := c.request(c.proof(pop.ProofParams{}))
		first, second := f[i%2], f[(i+1)%2]
		if a := read(first.check(envoyRequest("GET", "/orders/1", req))); !a.allowed {
			t.Fatalf("first use at one replica: %+v", a)
		}
		if a := read(second.check(envoyRequest("GET", "/orders/1", req))); a.allowed || a.errorField() != "invalid_dpop_proof" {
			t.Fatalf("replay at the other replica: %+v", a)
		}
	}
}

func TestCertificateBoundTokens(t *testing.T) {
	h := startPoP(t)
	ca := newCA(t, "clients")
	cert, other := ca.issue(t, "client", 0), ca.issue(t, "other", 0)
	sum := sha256.Sum256(cert.Certificate[0])
	token := h.issuer.Mint(map[string]any{"sub": "svc", "aud": "orders-api", "cnf": map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}})
	withCert := func(der []byte) func() *answer {
		return func() *answer {
			req := envoyRequest("GET", "/orders/1", bearer(token))
			if der != nil {
				req.Attributes.Source.Certificate = envoyEncodedPEM(der)
			}
			a := read(h.check(req))
			return &a
		}
	}
	if a := withCert(cert.Certificate[0])(); !a.allowed || a.headers["x-proof"] != "mtls" {
		t.Errorf("the bound certificate: %+v", a)
	}
	for name, der := range map[string][]byte{"another certificate": other.Certificate[0], "no certificate": nil} {
		if a := withCert(der)(); a.allowed || a.status != 401 || a.errorField() != "invalid_token" {
			t.Errorf("%s: %+v", name, a)
		}
	}
}

// envoyEncodedPEM encodes a certificate as Envoy forwards it with
// include_peer_certificate: URL-encoded PEM.
func envoyEncodedPEM(der []byte) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D").Replace(string(p))
}

func TestServerNonces(t *testing.T) {
	secret := "a-shared-secret-of-at-least-32-characters"
	nonced := func(c *config.Config) {
		c.Issuers[0].DPoPNonce = true
		c.DPoP.NonceSecret = secret
	}
	a, b := startPoP(t, nonced), startPoP(t, nonced)
	c := newDPoPClient(t, a)
	first := read(a.check(envoyRequest("GET", "/orders/1", c.request(c.proof(pop.ProofParams{})))))
	nonce := first.headers["dpop-nonce"]
	if first.status != 401 || first.errorField() != "use_dpop_nonce" || nonce == "" ||
		!strings.HasPrefix(first.headers["www-authenticate"], `DPoP realm="tokenwise", error="use_dpop_nonce"`) {
		t.Fatalf("a proof without the nonce: %+v", first)
	}
	resp := a.check(envoyRequest("GET", "/orders/1", c.request(c.proof(pop.ProofParams{Nonce: nonce}))))
	if r := read(resp); !r.allowed {
		t.Fatalf("the retry with the nonce: %+v", r)
	}
	// The allowed answer hands the client the current nonce for its next proof.
	added := resp.GetOkResponse().GetResponseHeadersToAdd()
	if len(added) != 1 || added[0].GetHeader().GetKey() != "dpop-nonce" || added[0].GetHeader().GetValue() == "" {
		t.Fatalf("an allowed DPoP answer lacks DPoP-Nonce: %v", added)
	}
	// Another replica with the same secret accepts the nonce.
	cb := &dpopClient{t: t, key: c.key, token: b.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "cnf": map[string]any{"jkt": mustThumb(t, c.key)}})}
	if r := read(b.check(envoyRequest("GET", "/orders/1", cb.request(cb.proof(pop.ProofParams{Nonce: nonce}))))); !r.allowed {
		t.Fatalf("the nonce at another replica: %+v", r)
	}
	r := read(a.check(envoyRequest("GET", "/orders/1", c.request(c.proof(pop.ProofParams{Nonce: "made-up"})))))
	if r.status != 401 || r.errorField() != "use_dpop_nonce" || r.headers["dpop-nonce"] == "" {
		t.Fatalf("a made-up nonce: %+v", r)
	}
}

func mustThumb(t *testing.T, key crypto.Signer) string {
	t.Helper()
	s, err := pop.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAnIntrospectedTokenIsBoundByItsCnf: a cnf in an introspection answer
// binds the opaque token as a JWT's cnf would.
func TestAnIntrospectedTokenIsBoundByItsCnf(t *testing.T) {
	e := introspecttest.New(t)
	h := startPoP(t, withIntrospection(e))
	c := newDPoPClient(t, h)
	c.token = opaqueToken(t)
	e.Set(c.token, activeAnswer(map[string]any{"cnf": map[string]any{"jkt": mustThumb(t, c.key)}}))
	a := read(h.check(envoyRequest("GET", "/orders/1", bearer(c.token))))
	if a.status != 401 || !strings.Contains(a.headers["www-authenticate"], "bound to a DPoP key") {
		t.Fatalf("a DPoP-bound opaque token as Bearer: %+v", a)
	}
	if a := read(h.check(envoyRequest("GET", "/orders/1", c.request(c.proof(pop.ProofParams{}))))); !a.allowed || a.headers["x-proof"] != "dpop" {
		t.Fatalf("a DPoP-bound opaque token with its proof: %+v", a)
	}
}

// TestDPoPThroughTheHTTPFrontEnd: the same checks when the proxy asks over
// HTTP, and X-Forwarded-Proto counts only from a trusted proxy.
func TestDPoPThroughTheHTTPFrontEnd(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		h := startPolicy(t, popPolicy, func(c *config.Config) {
			c.HTTPAuthz.Address = "127.0.0.1:0"
			if !trusted {
				c.HTTPAuthz.TrustedProxies = []string{}
			}
		})
		h.waitReady()
		base := "http://" + h.srv.HTTPAuthzAddr()
		c := newDPoPClient(t, h)
		// send names the host shop.test, as a proxy forwards the client's Host.
		direct := c.proof(pop.ProofParams{URL: "http://shop.test/orders/1"})
		p := send(t, base, "GET", "/orders/1?x=1", "Authorization", "DPoP "+c.token, "DPoP", direct)
		if p.status != 200 || p.header.Get("X-Proof") != "dpop" {
			t.Fatalf("trusted=%v: a valid proof over HTTP: %d %v %q", trusted, p.status, p.header, p.body)
		}
		p = send(t, base, "GET", "/orders/1", "Authorization", "Bearer "+c.token)
		if p.status != 401 || !strings.Contains(p.header.Get("Www-Authenticate"), "bound to a DPoP key") {
			t.Fatalf("trusted=%v: the downgrade over HTTP: %d %v", trusted, p.status, p.header)
		}
		// The client's request was https at the edge: only a trusted proxy may say so.
		edge := c.proof(pop.ProofParams{URL: "https://shop.test/orders/1"})
		p = send(t, base, "GET", "/orders/1", "Authorization", "DPoP "+c.token, "DPoP", edge, "X-Forwarded-Proto", "https")
		if trusted && p.status != 200 || !trusted && (p.status != 401 || !strings.Contains(p.header.Get("Www-Authenticate"), "htu")) {
			t.Fatalf("trusted=%v: X-Forwarded-Proto https: %d %v", trusted, p.status, p.header)
		}
	}
}
