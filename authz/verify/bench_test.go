package verify

import (
	"context"
	"testing"

	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

func benchmarkVerify(b *testing.B, alg string) {
	iss := verifytest.NewIssuer(b)
	raw := iss.MintWith(alg, nil, map[string]any{"sub": "alice", "jti": "j1", "scope": "orders:read", "aud": "orders"})
	v := readyVerifier(b, issuerCfg(iss, "corp", nil))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, "RS256") }
func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, "ES256") }
