package uselimit

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// benchKey is a realistic key: issuer name and a UUID-like jti.
func benchKey(i int64) string {
	return "corporate-idp:jti:0f8fad5b-d9cb-469f-a165-" + strconv.FormatInt(i, 10)
}

// BenchmarkMemoryUse counts uses of 65,536 live tokens from every CPU.
func BenchmarkMemoryUse(b *testing.B) {
	m := NewMemory()
	defer m.Close()
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = benchKey(int64(i))
	}
	ctx := context.Background()
	var seed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := seed.Add(7919)
		for pb.Next() {
			i++
			if _, err := m.Use(ctx, keys[i&(1<<16-1)], 1<<62, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMemoryNewCounts inserts b.N new counts and reports the heap they
// hold. Run with -benchtime=1000000x for the 1,000,000-count figure.
func BenchmarkMemoryNewCounts(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := NewMemory()
	defer m.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m.Use(ctx, benchKey(int64(i)), 1, time.Duration(i%86400)*time.Second+time.Hour)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-bytes/count")
	runtime.KeepAlive(m)
}

// BenchmarkRedisUse is one-time use (SET NX PX) of new tokens from 64 concurrent callers.
func BenchmarkRedisUse(b *testing.B) { benchRedis(b, 1) }

// BenchmarkRedisUseN is 5-use counting (the script) from 64 concurrent callers.
func BenchmarkRedisUseN(b *testing.B) { benchRedis(b, 5) }

// BenchmarkRedisUseCluster is BenchmarkRedisUse on a three-master cluster.
func BenchmarkRedisUseCluster(b *testing.B) {
	c := redistest.StartCluster(b, 3)
	benchStore(b, newModeStore(b, clusterConfig(c)), 1)
}

// BenchmarkRedisUseWait is BenchmarkRedisUse with wait_replicas: 1 on a
// master with one replica: the cost of WAIT.
func BenchmarkRedisUseWait(b *testing.B) {
	g := redistest.StartReplicated(b, 1)
	benchStore(b, newModeStore(b, config.Redis{Address: g.Master.Addr(), WaitReplicas: 1}), 1)
}

// BenchmarkRedisUseNoWaitReplicated is BenchmarkRedisUse on the same master
// with one replica, without WAIT: the baseline of BenchmarkRedisUseWait.
func BenchmarkRedisUseNoWaitReplicated(b *testing.B) {
	g := redistest.StartReplicated(b, 1)
	benchStore(b, newModeStore(b, config.Redis{Address: g.Master.Addr()}), 1)
}

func benchRedis(b *testing.B, limit int64) {
	srv := redistest.Start(b)
	benchStore(b, newRedisStore(b, srv, config.Redis{KeyPrefix: "tokenwise:"}), limit)
}

// benchStore counts uses of new tokens on r from 64 concurrent callers.
func benchStore(b *testing.B, r *Redis, limit int64) {
	ctx := context.Background()
	var next atomic.Int64
	// RunParallel starts parallelism*GOMAXPROCS goroutines; aim at 64 callers.
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// Every call is a new token; N-use tokens get limit calls each.
			k := benchKey(next.Add(1) / limit)
			if _, err := r.Use(ctx, k, limit, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
}
