package pop

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkCheckES256 is one DPoP check: parse, ES256 verify, claims,
// replay store. The proofs are signed before the clock starts.
func BenchmarkCheckES256(b *testing.B) {
	key := newKey(b)
	cnf := map[string]any{"jkt": jkt(b, key)}
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = validParts(b, key).sign(b, jwt.SigningMethodES256, key)
	}
	c := testChecker(Options{})
	p := testPolicy()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Check(ctx, testRequest(proofs[i]), "DPoP", testToken, cnf, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckBearerUnbound is the cost an unbound Bearer token pays.
func BenchmarkCheckBearerUnbound(b *testing.B) {
	c := testChecker(Options{})
	p := testPolicy()
	req := testRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Check(context.Background(), req, "Bearer", testToken, nil, p); err != nil {
			b.Fatal(err)
		}
	}
}
