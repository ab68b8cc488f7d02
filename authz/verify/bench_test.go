package verify

import (
	"context"
	"strings"
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

// BenchmarkCheckJSON is the duplicate-member check alone on the header and
// claims of the token BenchmarkVerifyRS256 verifies, to compare with it.
func BenchmarkCheckJSON(b *testing.B) {
	iss := verifytest.NewIssuer(b)
	raw := iss.MintWith("RS256", nil, map[string]any{"sub": "alice", "jti": "j1", "scope": "orders:read", "aud": "orders"})
	c, err := split(raw, MaxTokenBytes)
	if err != nil {
		b.Fatal(err)
	}
	hdr, _ := decodeB64(raw[:strings.IndexByte(raw, '.')])
	b.ReportAllocs()
	for b.Loop() {
		if checkJSON(hdr) != nil || checkJSON(c.payload) != nil {
			b.Fatal("duplicate")
		}
	}
}
