package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit"
	"github.com/tokenwise/tokenwise/authz/uselimit/redisproc"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// clusterStore is a store on cluster c, closed at cleanup.
func clusterStore(t *testing.T, c *redisproc.Cluster) *Redis {
	t.Helper()
	s, err := New(config.UseLimits{Store: "redis", Redis: config.Redis{
		Mode: config.RedisCluster, Addresses: c.Addrs(), KeyPrefix: "tw:"}}, config.RateLimits{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*Redis)
}

// takeConcurrently sends n Takes of limits at once, alternating between
// replicas, and counts the allowed ones.
func takeConcurrently(t *testing.T, replicas []*Redis, n int, limits ...Limit) int64 {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := replicas[i%len(replicas)].Take(context.Background(), limits)
			switch {
			case err != nil:
				t.Error(err)
			case res.Allowed:
				allowed.Add(1)
			case len(res.Statuses) != len(limits):
				t.Errorf("a refusal without every status: %+v", res)
			}
		})
	}
	close(start)
	wg.Wait()
	return allowed.Load()
}

// On a three-master cluster a bucket is exact across two replicas; stacked
// limits whose buckets are on different shards never let more through than
// the tighter one, and a refused request keeps nothing of the other's
// capacity.
func TestRedisClusterLimits(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	replicas := []*Redis{clusterStore(t, c), clusterStore(t, c)}

	one := limit("per-user", "bob", 1, time.Hour, 37) // nothing refills during the test
	if got := takeConcurrently(t, replicas, 200, one); got != 37 {
		t.Fatalf("one bucket: allowed %d of 200, want exactly 37", got)
	}

	burst := limit("per-user", "alice", 1, time.Hour, 37)
	quota := limit("tenant-quota", "acme", 1, time.Hour, 50)
	if uselimit.KeySlot(replicas[0].Key(burst)) == uselimit.KeySlot(replicas[0].Key(quota)) {
		t.Fatal("the two buckets share a slot: pick other keys")
	}
	// Under this much contention the shards may each take a different part
	// of the requests, and then give back what the other refused: how many
	// pass varies, never more than the tighter limit.
	got := takeConcurrently(t, replicas, 200, burst, quota)
	if got > 37 {
		t.Fatalf("stacked: allowed %d of 200, more than the tighter limit, 37", got)
	}
	t.Logf("stacked: %d of 200 concurrent requests passed", got)
	// Refused requests were refunded: the quota holds exactly what passed.
	res := take(t, replicas[0], quota)
	if want := 50 - got - 1; !res.Allowed || res.Statuses[0].Remaining != want {
		t.Fatalf("quota after %d stacked requests passed: %+v, want %d remaining", got, res.Statuses[0], want)
	}

	// Sequentially, stacked limits across shards are exact: alice's burst
	// lets the rest of its 37 through, and its refusals take nothing from
	// the tenant's quota, which another user still gets.
	for range 37 - got {
		if !take(t, replicas[0], burst, quota).Allowed {
			t.Fatal("refused within both limits")
		}
	}
	for range 5 {
		if res := take(t, replicas[1], burst, quota); res.Allowed || res.Statuses[0].Allowed {
			t.Fatalf("alice past her burst: %+v", res)
		}
	}
	carol := limit("per-user", "carol", 1, time.Hour, 37)
	left := 50 - 37 - 1 // the quota after alice's 37 and the check above
	for i := range left {
		if !take(t, replicas[i%2], carol, quota).Allowed {
			t.Fatalf("carol refused after %d of the %d the quota has left", i, left)
		}
	}
	if take(t, replicas[0], carol, quota).Allowed {
		t.Fatal("the quota let more through than it holds")
	}
}
