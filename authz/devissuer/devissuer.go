// Package devissuer is the development token issuer behind `tokenwise dev`
// and `tokenwise bench`: ephemeral signing keys (ES256 by default, RS256 on
// request) that live as long as the process, their JWKS, and an endpoint
// that mints tokens on request, and the OpenID discovery document naming the
// JWKS. Tokens are minted only for loopback callers that name a loopback
// host, and the issuer is never part of `tokenwise serve`.
package devissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer signs development tokens with keys made at start.
type Issuer struct {
	issuer   string
	audience string
	// keys holds one key per algorithm; algs[0] is the default for Mint.
	keys map[string]*signingKey
	algs []string
}

// signingKey is one private key and its key id.
type signingKey struct {
	alg     string
	kid     string
	private crypto.Signer
}

// Algorithms are the signing algorithms an Issuer can hold keys for.
var Algorithms = []string{"ES256", "RS256"}

// Option adjusts an Issuer made by New.
type Option func(*options)

type options struct{ algs []string }

// WithAlgorithms makes one key for each of algs (ES256, RS256) instead of the
// single ES256 key; the first is the algorithm Mint uses when Token.Alg is empty.
func WithAlgorithms(algs ...string) Option {
	return func(o *options) { o.algs = algs }
}

// New makes an issuer whose tokens carry iss and aud, with an ES256 key
// unless WithAlgorithms says otherwise.
func New(iss, aud string, opts ...Option) (*Issuer, error) {
	o := options{algs: []string{"ES256"}}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.algs) == 0 {
		return nil, errors.New("devissuer: no algorithm")
	}
	i := &Issuer{issuer: iss, audience: aud, keys: map[string]*signingKey{}}
	for _, alg := range o.algs {
		if _, dup := i.keys[alg]; dup {
			continue
		}
		k, err := newKey(alg)
		if err != nil {
			return nil, err
		}
		i.keys[alg] = k
		i.algs = append(i.algs, alg)
	}
	return i, nil
}

// newKey generates a key for alg with a random kid.
func newKey(alg string) (*signingKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("devissuer: algorithm %q not supported (want one of %s)", alg, strings.Join(Algorithms, ", "))
	}
	if err != nil {
		return nil, err
	}
	return &signingKey{alg: alg, kid: "dev-" + strings.ToLower(alg) + "-" + randomHex(4), private: priv}, nil
}

// Token says what to mint.
type Token struct {
	Subject string
	Scopes  []string
	// OneTime adds the one_time claim, which the bundled policy turns into one_time_use.
	OneTime  bool
	Lifetime time.Duration
	// Alg picks the signing key ("": the issuer's first algorithm).
	Alg string
	// JKT binds the token to a DPoP key: its RFC 7638 SHA-256 thumbprint,
	// base64url, put in cnf.jkt (RFC 9449 §6).
	JKT string
	// X5T binds the token to a client certificate: its SHA-256 thumbprint,
	// base64url, put in cnf["x5t#S256"] (RFC 8705 §3.1).
	X5T string
	// Audience replaces the issuer's audience ("": the issuer's).
	Audience string
	// Claims are extra claims, to try policies that read them (tenant, acr,
	// a file name). They may replace any claim but iss.
	Claims map[string]any
}

// Mint signs a token with a fresh jti.
func (i *Issuer) Mint(t Token) (string, error) {
	alg := t.Alg
	if alg == "" {
		alg = i.algs[0]
	}
	k, ok := i.keys[alg]
	if !ok {
		return "", fmt.Errorf("devissuer: no %s key", alg)
	}
	if t.Lifetime <= 0 {
		t.Lifetime = time.Hour
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": i.issuer,
		"aud": i.audience,
		"sub": t.Subject,
		"iat": now.Unix(),
		"exp": now.Add(t.Lifetime).Unix(),
		"jti": randomHex(16),
	}
	if len(t.Scopes) > 0 {
		claims["scope"] = strings.Join(t.Scopes, " ")
	}
	if t.OneTime {
		claims["one_time"] = true
	}
	if t.Audience != "" {
		claims["aud"] = t.Audience
	}
	for k, v := range t.Claims {
		if k != "iss" {
			claims[k] = v
		}
	}
	if cnf := t.cnf(); cnf != nil {
		claims["cnf"] = cnf
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	tok.Header["kid"] = k.kid
	return tok.SignedString(k.private)
}

// cnf is the token's confirmation claim, nil when it is unbound.
func (t Token) cnf() map[string]any {
	cnf := map[string]any{}
	if t.JKT != "" {
		cnf["jkt"] = t.JKT
	}
	if t.X5T != "" {
		cnf["x5t#S256"] = t.X5T
	}
	if len(cnf) == 0 {
		return nil
	}
	return cnf
}

// JWKS serves the public keys as a JSON Web Key Set.
func (i *Issuer) JWKS() http.Handler {
	keys := make([]map[string]string, 0, len(i.algs))
	for _, alg := range i.algs {
		keys = append(keys, i.keys[alg].jwk())
	}
	body, _ := json.Marshal(map[string]any{"keys": keys})
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		w.Write(body)
	})
}

// jwk is the public half of k as a JWK.
func (k *signingKey) jwk() map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := k.private.Public().(type) {
	case *ecdsa.PublicKey:
		b, _ := pub.Bytes() // uncompressed point: 0x04 || X || Y
		return map[string]string{"kty": "EC", "crv": "P-256", "alg": k.alg, "use": "sig", "kid": k.kid,
			"x": b64(b[1:33]), "y": b64(b[33:])}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "alg": k.alg, "use": "sig", "kid": k.kid,
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	}
	return nil
}

// MintParameters are the query parameters MintHandler takes; any other is a 400.
var MintParameters = []string{"sub", "scope", "one_time", "ttl", "aud", "claims", "jkt", "x5t"}

// MintHandler mints a token from the query: sub, scope (space- or
// comma-separated), one_time (true/false), ttl (a Go duration), aud (the
// token's audience), claims (a JSON object of extra claims), jkt (a DPoP
// key thumbprint the token is bound to) and x5t (a client certificate's
// SHA-256 thumbprint). It answers only loopback callers that name a
// loopback host: a web page on another site cannot reach it through a DNS
// name rebound to 127.0.0.1.
func (i *Issuer) MintHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) || !isLoopbackHost(r.Host) {
			http.Error(w, "the development issuer mints tokens only for loopback callers naming a loopback host (127.0.0.1, [::1] or localhost)", http.StatusForbidden)
			return
		}
		t, err := parseMint(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		token, err := i.Mint(t)
		if err != nil {
			http.Error(w, "mint failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("content-type", "text/plain")
		w.Header().Set("cache-control", "no-store")
		fmt.Fprintln(w, token)
	})
}

// Discovery serves the OpenID Connect discovery document (OpenID Connect
// Discovery 1.0 §3) naming jwksURI, so configurations that give only the
// issuer work against the development issuer.
func (i *Issuer) Discovery(jwksURI string) http.Handler {
	body, _ := json.Marshal(map[string]any{
		"issuer":                                i.issuer,
		"jwks_uri":                              jwksURI,
		"id_token_signing_alg_values_supported": i.algs,
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		w.Write(body)
	})
}

func parseMint(r *http.Request) (Token, error) {
	q := r.URL.Query()
	for name, values := range q {
		if !slices.Contains(MintParameters, name) {
			return Token{}, fmt.Errorf("unknown parameter %q: the development issuer takes %s", name, strings.Join(MintParameters, ", "))
		}
		if len(values) > 1 {
			return Token{}, fmt.Errorf("parameter %q given %d times: give it once", name, len(values))
		}
	}
	t := Token{Subject: q.Get("sub"), Lifetime: time.Hour, Audience: q.Get("aud")}
	if t.Subject == "" {
		t.Subject = "alice"
	}
	t.Scopes = strings.FieldsFunc(q.Get("scope"), func(c rune) bool { return c == ' ' || c == ',' })
	if v := q.Get("one_time"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return t, fmt.Errorf("one_time %q: want true or false", v)
		}
		t.OneTime = b
	}
	for name, dst := range map[string]*string{"jkt": &t.JKT, "x5t": &t.X5T} {
		if v := q.Get(name); v != "" {
			if !isThumbprint(v) {
				return t, fmt.Errorf("%s %q: want a base64url SHA-256 thumbprint (43 characters)", name, v)
			}
			*dst = v
		}
	}
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 24*time.Hour {
			return t, fmt.Errorf("ttl %q: want a duration up to 24h, like 10m", v)
		}
		t.Lifetime = d
	}
	if v := q.Get("claims"); v != "" {
		if err := json.Unmarshal([]byte(v), &t.Claims); err != nil || t.Claims == nil {
			return t, fmt.Errorf(`claims: want a JSON object, such as {"tenant":"acme","acr":"mfa"}`)
		}
	}
	return t, nil
}

// isThumbprint reports whether s is an unpadded base64url SHA-256 digest.
func isThumbprint(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32
}

// isLoopbackHost reports whether the request's Host names a loopback
// address or localhost; other names may resolve anywhere, now or later.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
