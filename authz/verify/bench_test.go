package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// benchmarkVerify verifies one token over and over: cold with the cache
// off (every Check pays the signature), cached with it on.
func benchmarkVerify(b *testing.B, alg string, cacheSize int) {
	iss := verifytest.NewIssuer(b)
	raw := iss.MintWith(alg, nil, map[string]any{"sub": "alice", "jti": "j1", "scope": "orders:read", "aud": "orders"})
	v, err := New([]config.Issuer{issuerCfg(iss, "corp", nil)}, Options{CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	waitFor(b, "verifier ready", v.Ready)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B)       { benchmarkVerify(b, "RS256", -1) }
func BenchmarkVerifyES256(b *testing.B)       { benchmarkVerify(b, "ES256", -1) }
func BenchmarkVerifyRS256Cached(b *testing.B) { benchmarkVerify(b, "RS256", 0) }

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
