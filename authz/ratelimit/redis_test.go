package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// newRedisStore is a store with a connection of its own on srv, as each
// tokenwise replica has, closed at cleanup.
func newRedisStore(t testing.TB, srv *redistest.Server, timeout time.Duration) *Redis {
	t.Helper()
	s, err := New(config.UseLimits{Store: "redis", Redis: config.Redis{Address: srv.Addr(), KeyPrefix: "tw:"}}, config.RateLimits{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*Redis)
}

func rawClient(t testing.TB, srv *redistest.Server) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRedisBurstIsExactAcrossTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	replicas := []*Redis{newRedisStore(t, srv, time.Second), newRedisStore(t, srv, time.Second)}
	const n, burst = 400, 37
	l := limit("per-user", "alice", 1, time.Hour, burst) // nothing refills during the test
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := replicas[i%2].Take(context.Background(), []Limit{l})
			switch {
			case err != nil:
				t.Error(err)
			case res.Allowed:
				allowed.Add(1)
			default:
				refused.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if allowed.Load() != burst || refused.Load() != n-burst {
		t.Fatalf("allowed %d, refused %d of %d; want exactly the burst, %d, allowed", allowed.Load(), refused.Load(), n, burst)
	}
}

func TestRedisStackedLimitsAreAllOrNothing(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, time.Second)
	burst := limit("burst", "alice", 100, time.Second, 100)
	quota := limit("tenant-quota", "acme", 2, time.Hour, 2)
	for range 2 {
		if !take(t, r, burst, quota).Allowed {
			t.Fatal("refused within both limits")
		}
	}
	res := take(t, r, burst, quota)
	st, refused := res.Refused()
	if res.Allowed || !refused || st.Limit.Name != "tenant-quota" || st.RetryAfter < 29*time.Minute {
		t.Fatalf("third request: %+v; want refused by tenant-quota for about 30 minutes", res)
	}
	if !res.Statuses[0].Allowed || res.Statuses[0].Remaining > 97 {
		t.Errorf("the burst limit's status: %+v", res.Statuses[0])
	}
	// The refusal took nothing from the burst limit: a different quota key
	// stacked on the same burst key sees it as the two allowed requests left it.
	other := limit("tenant-quota", "globex", 2, time.Hour, 2)
	res = take(t, r, burst, other)
	if !res.Allowed || res.Statuses[0].Remaining < 96 {
		t.Fatalf("burst after the refusal: %+v; want 97 left (minus what refilled)", res.Statuses[0])
	}
}

func TestRedisRefillsInRealTime(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, time.Second)
	l := limit("fast", "k", 20, time.Second, 1) // one per 50ms
	if !take(t, r, l).Allowed {
		t.Fatal("the first request was refused")
	}
	res := take(t, r, l)
	if res.Allowed || res.Statuses[0].RetryAfter <= 0 || res.Statuses[0].RetryAfter > 50*time.Millisecond {
		t.Fatalf("second request: %+v; want refused with a retry within 50ms", res)
	}
	time.Sleep(res.Statuses[0].RetryAfter)
	redistest.Eventually(t, "the bucket refilled", func() error {
		if !take(t, r, l).Allowed {
			return errors.New("refused")
		}
		return nil
	})
}

func TestRedisKeysHoldAHashNeverTheKey(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, time.Second)
	l := limit("per-address", "203.0.113.7", 10, time.Minute, 10)
	take(t, r, l)
	raw := rawClient(t, srv)
	keys, err := raw.Do(context.Background(), raw.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != r.Key(l) || !strings.HasPrefix(keys[0], "tw:rl:{") {
		t.Fatalf("keys = %q; want one key, %q", keys, r.Key(l))
	}
	if strings.Contains(keys[0], "203.0.113.7") || strings.Contains(keys[0], "per-address") {
		t.Errorf("the key %q shows the name or the raw key", keys[0])
	}
	pttl, err := raw.Do(context.Background(), raw.B().Pttl().Key(keys[0]).Build()).AsInt64()
	if err != nil || pttl <= 0 || pttl > 6000 {
		t.Errorf("PTTL = %d, %v; want the key to expire when its bucket is full (within one interval, 6s)", pttl, err)
	}
}

func TestRedisScriptReloadsAfterFlush(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, time.Second)
	l := limit("n", "k", 10, time.Minute, 10)
	take(t, r, l)
	raw := rawClient(t, srv)
	if err := raw.Do(context.Background(), raw.B().ScriptFlush().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if res := take(t, r, l); !res.Allowed || res.Statuses[0].Remaining != 8 {
		t.Fatalf("after SCRIPT FLUSH: %+v", res)
	}
}

func TestRedisOverLimitKeyIsRefusedLocally(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, time.Second)
	l := limit("per-user", "mallory", 1, time.Hour, 1)
	take(t, r, l)
	if res := take(t, r, l); res.Allowed || res.Local {
		t.Fatalf("the first refusal: %+v; want it from Redis", res)
	}
	srv.Stop() // any round trip would now fail
	res, err := r.Take(context.Background(), []Limit{l})
	if err != nil || res.Allowed || !res.Local || res.Statuses[0].RetryAfter < 59*time.Minute {
		t.Fatalf("a known-refused key with Redis down: %+v, %v; want refused locally", res, err)
	}
	if _, err := r.Take(context.Background(), []Limit{limit("per-user", "alice", 1, time.Hour, 1)}); err == nil {
		t.Fatal("another key was answered with Redis down")
	}
}

func TestRedisOutageFailsFastAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedisStore(t, srv, 100*time.Millisecond)
	l := limit("n", "k", 1000, time.Second, 1000)
	take(t, r, l)
	srv.Pause() // hung: connected, never answers
	if _, err := r.Take(context.Background(), []Limit{l}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a hung Redis: %v; want the store's own short deadline", err)
	}
	srv.Resume()
	srv.Stop() // killed: the connection is refused
	if _, err := r.Take(context.Background(), []Limit{l}); err == nil {
		t.Fatal("Take with Redis killed succeeded")
	}
	srv.Restart()
	// Same store, no new client: rueidis re-dials on its own.
	redistest.Eventually(t, "Take after the restart", func() error {
		_, err := r.Take(context.Background(), []Limit{l})
		return err
	})
	for i := range 20 {
		if _, err := r.Take(context.Background(), []Limit{l}); err != nil {
			t.Fatalf("call %d after recovery: %v", i, err)
		}
	}
}

func BenchmarkRedisTake(b *testing.B) {
	srv := redistest.Start(b)
	r := newRedisStore(b, srv, time.Second)
	l := []Limit{limit("per-user", "alice", 1_000_000, time.Second, 1_000_000)}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Take(context.Background(), l); err != nil {
				b.Fatal(err)
			}
		}
	})
}
