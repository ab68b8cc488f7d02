package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// rateBenchPolicy has a one-time route and a rate-limited route whose limit
// never refuses, so both benchmarks below measure an allowed Check.
const rateBenchPolicy = `package envoy.authz

default allow := false

allow := {"allowed": true, "one_time_use": true} if input.parsed_path == ["pay"]

allow := {"allowed": true, "rate_limits": [{"name": "per-user", "key": input.token.claims.sub, "requests": 1000000, "per": "1s"}]} if {
	input.parsed_path == ["limited"]
}
`

// rateBenchServer is a whole tokenwise whose use limits and rate limits are
// in a real redis-server.
func rateBenchServer(b *testing.B, redisAddr string) (*Authorizer, *verifytest.Issuer) {
	b.Helper()
	iss := verifytest.NewIssuer(b)
	cfg := benchConfig(iss)
	cfg.UseLimits.Store, cfg.UseLimits.Redis.Address = "redis", redisAddr
	return startBenchServer(b, cfg, rateBenchPolicy), iss
}

// BenchmarkRedisCheck compares, in one run on one Redis, a one-time Check
// (SET NX) with a rate-limited Check (the GCRA script). Both use a fresh
// ES256 token per Check, minted before the timer, so they differ only in
// the store call.
func BenchmarkRedisCheck(b *testing.B) {
	redis := redistest.Start(b)
	a, iss := rateBenchServer(b, redis.Addr())
	for _, path := range []string{"/pay", "/limited"} {
		b.Run(map[string]string{"/pay": "one-time", "/limited": "rate-limited"}[path], func(b *testing.B) {
			reqs := make([]*authv3.CheckRequest, b.N)
			for i := range reqs {
				tok := iss.MintWith("ES256", nil, map[string]any{"sub": "alice", "aud": "orders-api", "jti": fmt.Sprint(path, time.Now().UnixNano(), "-", i)})
				reqs[i] = benchCheckRequest(path, tok)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if resp, err := a.Check(ctx, reqs[i]); err != nil || resp.GetOkResponse() == nil {
					b.Fatalf("Check = %v, %v", resp, err)
				}
			}
		})
	}
}

// BenchmarkRedisCheckInterleaved alternates a one-time Check and a
// rate-limited Check, timing each, so machine noise falls on both alike; it
// reports each one's mean and their ratio (rate-limited / one-time).
func BenchmarkRedisCheckInterleaved(b *testing.B) {
	redis := redistest.Start(b)
	a, iss := rateBenchServer(b, redis.Addr())
	mint := func(path string, i int) *authv3.CheckRequest {
		tok := iss.MintWith("ES256", nil, map[string]any{"sub": "alice", "aud": "orders-api", "jti": fmt.Sprint(path, time.Now().UnixNano(), "-", i)})
		return benchCheckRequest(path, tok)
	}
	pay, limited := make([]*authv3.CheckRequest, b.N), make([]*authv3.CheckRequest, b.N)
	for i := range b.N {
		pay[i], limited[i] = mint("/pay", i), mint("/limited", i)
	}
	ctx := context.Background()
	check := func(req *authv3.CheckRequest) time.Duration {
		start := time.Now()
		if resp, err := a.Check(ctx, req); err != nil || resp.GetOkResponse() == nil {
			b.Fatalf("Check = %v, %v", resp, err)
		}
		return time.Since(start)
	}
	var once, rated time.Duration
	b.ResetTimer()
	for i := range b.N {
		once += check(pay[i])
		rated += check(limited[i])
	}
	b.ReportMetric(float64(once.Nanoseconds())/float64(b.N), "ns/one-time")
	b.ReportMetric(float64(rated.Nanoseconds())/float64(b.N), "ns/rate-limited")
	b.ReportMetric(float64(rated)/float64(once), "ratio")
}
