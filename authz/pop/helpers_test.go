package pop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed clock of the unit tests.
var testNow = time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)

const (
	testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
	testURL   = "https://api.example.com/orders"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jkt(t testing.TB, key crypto.Signer) string {
	t.Helper()
	s, err := Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// proofParts are the header and claims of a proof a test signs as it likes.
type proofParts struct {
	header jwt.MapClaims // only typ, alg, jwk and extra members; golang-jwt sets alg
	claims jwt.MapClaims
}

// validParts are a good proof's parts for key, testURL, GET and testToken.
func validParts(t testing.TB, key crypto.Signer) proofParts {
	t.Helper()
	jwk, err := PublicJWK(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return proofParts{
		header: jwt.MapClaims{"typ": "dpop+jwt", "jwk": jwk},
		claims: jwt.MapClaims{"jti": randomID(), "htm": "GET", "htu": testURL, "iat": testNow.Unix(), "ath": ath(testToken)},
	}
}

// sign signs parts with key under method.
func (p proofParts) sign(t testing.TB, method jwt.SigningMethod, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, p.claims)
	for k, v := range p.header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testRequest(proofs ...string) Request {
	return Request{Method: "GET", Scheme: "https", Authority: "api.example.com", Path: "/orders?x=1", Proofs: proofs}
}

func testChecker(opts Options) *Checker {
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	if opts.Replay == nil {
		m := NewMemoryReplay()
		m.now = opts.Now
		opts.Replay = m
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return New(opts)
}

func testPolicy() Policy {
	return Policy{ProofLifetime: 60 * time.Second, Leeway: 5 * time.Second, Algorithms: []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}}
}

// failingStore is a replay store that cannot be reached.
type failingStore struct{}

func (failingStore) Claim(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}
func (failingStore) Close() error { return nil }

// wantErr fails unless err is of kind with reason.
func wantErr(t *testing.T, err *Error, kind Kind, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Check passed; want %s", reason)
	}
	if err.Kind != kind || err.Reason != reason {
		t.Fatalf("Check: kind %d reason %s (%q); want kind %d reason %s", err.Kind, err.Reason, err.Description, kind, reason)
	}
}
