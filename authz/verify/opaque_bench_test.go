package verify

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/introspect/introspecttest"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// BenchmarkVerifyCached compares Verify of a cached JWT with Verify of a
// cached opaque token of the same content, in one run.
func BenchmarkVerifyCached(b *testing.B) {
	iss := verifytest.NewIssuer(b)
	e := introspecttest.New(b)
	claims := map[string]any{"sub": "alice", "jti": "j1", "scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()}
	e.Set("ory_at_bench", claims)
	hydra := e.Config("hydra")
	hydra.Introspection.TokenPrefix = "ory_at_"
	v := readyVerifier(b, iss.Config("corp"), hydra)
	for name, raw := range map[string]string{"jwt": iss.Mint(claims), "opaque": "ory_at_bench"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpaqueMemoryPerEntry verifies n distinct opaque tokens once each
// and reports the heap each cached one holds: the answer, its cache entry
// and the Token built from it. Run it with -benchtime=1x.
func BenchmarkOpaqueMemoryPerEntry(b *testing.B) {
	const n = 2000
	e := introspecttest.New(b)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("ory_at_%040d", i)
		e.Set(tokens[i], map[string]any{"sub": fmt.Sprintf("user-%d", i), "client_id": "web-frontend",
			"scope": "openid offline orders:read", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
			"aud": []string{"orders-api"}, "iss": e.Issuer(), "token_type": "Bearer", "ext": map[string]any{"tenant": "acme"}})
	}
	for b.Loop() {
		v := newVerifier(b, e.Config("hydra"))
		mustVerify(b, v, tokens[0]) // the HTTP connection and other one-time state
		before := heapInUse()
		for _, raw := range tokens[1:] {
			mustVerify(b, v, raw)
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/(n-1), "B/entry")
		runtime.KeepAlive(v)
		v.Close()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
