package introspect

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// typicalAnswer is an answer as Ory Hydra gives it for an access token.
func typicalAnswer(i int) []byte {
	return fmt.Appendf(nil, `{"active":true,"sub":"user-%d","client_id":"web-frontend","scope":"openid offline orders:read",`+
		`"exp":%d,"iat":%d,"nbf":%d,"aud":["orders-api"],"iss":"https://hydra.example.com/","token_type":"Bearer",`+
		`"token_use":"access_token","ext":{"tenant":"acme"}}`, i, time.Now().Add(time.Hour).Unix(), time.Now().Unix(), time.Now().Unix())
}

// BenchmarkCacheMemoryPerEntry fills a cache with n parsed answers and
// reports the heap each one holds (answer, claims and cache entry); run it
// with -benchtime=1x. verify adds its Token to an answer on first use.
func BenchmarkCacheMemoryPerEntry(b *testing.B) {
	const n = 10000
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = typicalAnswer(i)
	}
	for b.Loop() {
		before := heapInUse()
		c := newCache(n * 2) // room for all: nothing evicted
		now := time.Now()
		for i, body := range bodies {
			a, err := parse(body)
			if err != nil {
				b.Fatal(err)
			}
			a.TokenHash = sha256.Sum256(fmt.Appendf(nil, "token-%d", i))
			c.put(a, now.Add(time.Minute), now)
		}
		after := heapInUse()
		if c.len() != n {
			b.Fatalf("cache holds %d, want %d", c.len(), n)
		}
		b.ReportMetric(float64(after-before)/n, "B/entry")
		runtime.KeepAlive(c)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
