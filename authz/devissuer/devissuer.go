// Package devissuer is the development token issuer behind `tokenwise dev`:
// an ephemeral ES256 key that lives as long as the process, its JWKS, and an
// endpoint that mints tokens on request. It answers loopback callers only and
// is never part of `tokenwise serve`.
package devissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer signs development tokens with a key made at start.
type Issuer struct {
	issuer   string
	audience string
	key      *ecdsa.PrivateKey
	kid      string
}

// New makes an issuer whose tokens carry iss and aud.
func New(iss, aud string) (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Issuer{issuer: iss, audience: aud, key: key, kid: "dev-" + randomHex(4)}, nil
}

// Token says what to mint.
type Token struct {
	Subject string
	Scopes  []string
	// OneTime adds the one_time claim, which the bundled policy turns into one_time_use.
	OneTime  bool
	Lifetime time.Duration
}

// Mint signs a token with a fresh jti.
func (i *Issuer) Mint(t Token) (string, error) {
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
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = i.kid
	return tok.SignedString(i.key)
}

// JWKS serves the public key as a JSON Web Key Set.
func (i *Issuer) JWKS() http.Handler {
	pub := i.key.PublicKey
	b, _ := pub.Bytes() // uncompressed point: 0x04 || X || Y
	set := map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": i.kid,
		"x": base64.RawURLEncoding.EncodeToString(b[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(b[33:]),
	}}}
	body, _ := json.Marshal(set)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		w.Write(body)
	})
}

// MintHandler mints a token from the query: sub, scope (space- or
// comma-separated), one_time (true/false), ttl (a Go duration). It answers
// loopback callers only.
func (i *Issuer) MintHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r.RemoteAddr) {
			http.Error(w, "the development issuer answers loopback callers only", http.StatusForbidden)
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

func parseMint(r *http.Request) (Token, error) {
	q := r.URL.Query()
	t := Token{Subject: q.Get("sub"), Lifetime: time.Hour}
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
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 24*time.Hour {
			return t, fmt.Errorf("ttl %q: want a duration up to 24h, like 10m", v)
		}
		t.Lifetime = d
	}
	return t, nil
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
