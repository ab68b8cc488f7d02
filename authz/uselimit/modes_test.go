package uselimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redisproc"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// newModeStore opens a store with cfg, closed at cleanup.
func newModeStore(t testing.TB, cfg config.Redis) *Redis {
	t.Helper()
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "tokenwise:"
	}
	r, err := NewRedis(cfg)
	if err != nil {
		t.Fatalf("NewRedis(%s): %v", cfg.Mode, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// clusterConfig is a store configuration on c.
func clusterConfig(c *redisproc.Cluster) config.Redis {
	return config.Redis{Mode: config.RedisCluster, Addresses: c.Addrs()}
}

// TestCluster runs the cluster tests on one three-master cluster: a
// cluster takes seconds to start.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	t.Run("limits are exact across two replicas", func(t *testing.T) { testClusterLimits(t, c) })
	t.Run("keys spread over the shards", func(t *testing.T) { testClusterSpread(t, c) })
	t.Run("wait_replicas without replicas is a store error", func(t *testing.T) { testClusterWait(t, c) })
	t.Run("KeySlot agrees with CLUSTER KEYSLOT", func(t *testing.T) {
		for _, key := range []string{"tokenwise:corp:jti:1", "tokenwise:rl:{0f8fad5b}", "a{b}c", "{}x", "é{ü}"} {
			reply, err := redisproc.Do(c.Nodes[0].Addr(), "CLUSTER", "KEYSLOT", key)
			if err != nil {
				t.Fatal(err)
			}
			if want := strconv.Itoa(int(KeySlot(key))); reply != want {
				t.Errorf("KeySlot(%q) = %s, CLUSTER KEYSLOT = %s", key, want, reply)
			}
		}
	})
	t.Run("a store made while the cluster is down works once it is up", func(t *testing.T) { testClusterDownAtStart(t, c) })
}

// testClusterDownAtStart makes a store while no node answers: NewRedis
// succeeds, uses are errors, and once the nodes are back the same store
// counts uses, without being made again. It restarts every node: run it last.
func testClusterDownAtStart(t *testing.T, c *redisproc.Cluster) {
	c.Stop()
	s := newModeStore(t, clusterConfig(c))
	if ok, err := s.Use(context.Background(), "corp:jti:down", 1, time.Minute); ok || err == nil {
		t.Fatalf("use with the cluster down: %v, %v; want an error", ok, err)
	}
	for _, n := range c.Nodes {
		if err := n.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitOK(); err != nil {
		t.Fatal(err)
	}
	poll(t, 15*time.Second, "uses to work once the cluster is up", func() error {
		ok, err := s.Use(context.Background(), "corp:jti:up-"+strconv.FormatInt(time.Now().UnixNano(), 10), 1, time.Minute)
		if err == nil && !ok {
			return errors.New("a fresh token was refused")
		}
		return err
	})
	if ok, err := s.Use(context.Background(), "corp:jti:up-twice", 1, time.Minute); !ok || err != nil {
		t.Fatalf("first use: %v, %v", ok, err)
	}
	if ok, err := s.Use(context.Background(), "corp:jti:up-twice", 1, time.Minute); ok || err != nil {
		t.Fatalf("second use: %v, %v; want refused", ok, err)
	}
}

// testClusterLimits runs two stores (two tokenwise replicas) on the cluster:
// 200 concurrent uses of one token, alternating between the stores, allow
// exactly max_uses.
func testClusterLimits(t *testing.T, c *redisproc.Cluster) {
	a, b := newModeStore(t, clusterConfig(c)), newModeStore(t, clusterConfig(c))
	ctx := context.Background()
	for _, limit := range []int64{1, 5, 50} {
		key := "corp:jti:cluster-" + strconv.FormatInt(limit, 10)
		var n atomic.Int64
		got := hammer(t, 200, func() (bool, error) {
			s := a
			if n.Add(1)%2 == 0 {
				s = b
			}
			return s.Use(ctx, key, limit, time.Minute)
		})
		if got != limit {
			t.Fatalf("limit %d: allowed %d of 200 uses over two stores", limit, got)
		}
		if uses, err := b.Uses(ctx, key); err != nil || uses != limit {
			t.Fatalf("limit %d: Uses = %d, %v", limit, uses, err)
		}
	}
}

// testClusterSpread uses many tokens and counts the keys each master holds:
// every shard gets a fair part.
func testClusterSpread(t *testing.T, c *redisproc.Cluster) {
	s := newModeStore(t, clusterConfig(c))
	before := dbsizes(t, c)
	ctx := context.Background()
	const tokens = 300
	for i := range tokens {
		limit := int64(1 + i%3) // both SET NX and the script
		if ok, err := s.Use(ctx, "corp:jti:spread-"+strconv.Itoa(i), limit, time.Minute); !ok || err != nil {
			t.Fatalf("use %d: %v, %v", i, ok, err)
		}
	}
	total := 0
	for i, n := range dbsizes(t, c) {
		keys := n - before[i]
		t.Logf("node %s holds %d new keys", c.Nodes[i].Addr(), keys)
		if keys < tokens/10 {
			t.Errorf("node %s holds %d of %d keys", c.Nodes[i].Addr(), keys, tokens)
		}
		total += keys
	}
	if total != tokens {
		t.Fatalf("the nodes hold %d new keys, want %d", total, tokens)
	}
}

// dbsizes is DBSIZE of each node of c.
func dbsizes(t *testing.T, c *redisproc.Cluster) []int {
	t.Helper()
	out := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		reply, err := redisproc.Do(n.Addr(), "DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		out[i], _ = strconv.Atoi(reply)
	}
	return out
}

// testClusterWait: masters without replicas cannot acknowledge a use, so
// wait_replicas turns it into an error, for one-use and N-use limits alike;
// a refused use is still refused.
func testClusterWait(t *testing.T, c *redisproc.Cluster) {
	cfg := clusterConfig(c)
	cfg.WaitReplicas, cfg.WaitTimeout = 1, 20*time.Millisecond
	s := newModeStore(t, cfg)
	plain := newModeStore(t, clusterConfig(c))
	ctx := context.Background()
	for _, limit := range []int64{1, 3} {
		key := fmt.Sprintf("corp:jti:unacked-%d", limit)
		if ok, err := s.Use(ctx, key, limit, time.Minute); ok || !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("limit %d: Use = %v, %v; want ErrNotReplicated", limit, ok, err)
		}
		for range limit - 1 {
			plain.Use(ctx, key, limit, time.Minute)
		}
		if ok, err := s.Use(ctx, key, limit, time.Minute); ok || err != nil {
			t.Fatalf("limit %d, spent: Use = %v, %v; want refused without error", limit, ok, err)
		}
	}
}

// TestSentinel runs one master, one replica and three sentinels. It checks
// wait_replicas against a hung replica, then SIGKILLs the master during
// traffic: the stores follow the failover without being restarted, and a
// token used with wait_replicas: 1 just before the kill stays used.
func TestSentinel(t *testing.T) {
	g := redistest.StartSentinel(t, 1, 3)
	base := config.Redis{Mode: config.RedisSentinel, Addresses: g.Addrs(), SentinelMaster: redisproc.SentinelMaster}
	waitCfg := base
	waitCfg.WaitReplicas, waitCfg.WaitTimeout = 1, 200*time.Millisecond
	waiting, plain := newModeStore(t, waitCfg), newModeStore(t, base)
	ctx := context.Background()

	t.Run("wait_replicas needs the replica's acknowledgement", func(t *testing.T) {
		if ok, err := waiting.Use(ctx, "corp:jti:acked", 1, time.Minute); !ok || err != nil {
			t.Fatalf("acknowledged use: %v, %v", ok, err)
		}
		g.Replicas[0].Pause()
		defer g.Replicas[0].Resume()
		if ok, err := waiting.Use(ctx, "corp:jti:hung-replica", 2, time.Minute); ok || !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("use with a hung replica: %v, %v; want ErrNotReplicated", ok, err)
		}
		// Never past the caller's deadline, however long wait_timeout is.
		long := base
		long.WaitReplicas, long.WaitTimeout = 1, time.Minute
		s := newModeStore(t, long)
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		if ok, err := s.Use(short, "corp:jti:deadline", 1, time.Minute); ok || err == nil {
			t.Fatalf("use past the deadline: %v, %v", ok, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("Use took %v with a 50ms deadline and a 1m wait_timeout", took)
		}
	})

	t.Run("failover", func(t *testing.T) {
		if ok, err := waiting.Use(ctx, "corp:jti:before-kill", 1, time.Minute); !ok || err != nil {
			t.Fatalf("use before the kill: %v, %v", ok, err)
		}
		old := g.Master.Addr()
		traffic := startTraffic(plain)
		killed := time.Now()
		g.Master.Stop() // SIGKILL
		// The sentinels promote the replica after down-after-milliseconds
		// (1s) and an election; the store follows without a restart.
		poll(t, 30*time.Second, "uses to answer after the failover", func() error {
			return traffic.answeredSince(killed)
		})
		t.Logf("uses answered again %v after the kill", time.Since(killed).Round(100*time.Millisecond))
		traffic.stop()
		if addr, err := g.MasterAddr(); err != nil || addr == old {
			t.Fatalf("master after failover: %q, %v; was %s", addr, err, old)
		}
		// The waiting store was idle and follows the sentinels on its own:
		// until it has, its answer is an error, never an allow.
		poll(t, 10*time.Second, "the token used before the kill to be refused", func() error {
			ok, err := waiting.Use(ctx, "corp:jti:before-kill", 1, time.Minute)
			if ok {
				t.Fatal("the token used before the kill was allowed again after the failover")
			}
			return err
		})
		// The new master has no replica left: uses under wait_replicas are store errors.
		if ok, err := waiting.Use(ctx, "corp:jti:after-kill", 1, time.Minute); ok || !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("use without a replica: %v, %v; want ErrNotReplicated", ok, err)
		}
		if ok, err := plain.Use(ctx, "corp:jti:after-kill-plain", 1, time.Minute); !ok || err != nil {
			t.Fatalf("use after the failover: %v, %v", ok, err)
		}
	})
}

// poll retries f until it is nil, failing after bound.
func poll(t *testing.T, bound time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// traffic uses fresh keys in a loop and remembers when a use last succeeded.
type traffic struct {
	last   atomic.Int64 // UnixNano of the last successful use
	cancel context.CancelFunc
	done   chan struct{}
}

func startTraffic(s *Redis) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for i := 0; ctx.Err() == nil; i++ {
			call, stop := context.WithTimeout(ctx, 200*time.Millisecond)
			ok, err := s.Use(call, "corp:jti:traffic-"+strconv.Itoa(i), 1, time.Minute)
			stop()
			if ok && err == nil {
				tr.last.Store(time.Now().UnixNano())
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	return tr
}

// answeredSince is nil once a use succeeded after t.
func (tr *traffic) answeredSince(t time.Time) error {
	if tr.last.Load() > t.UnixNano() {
		return nil
	}
	return errors.New("no use succeeded yet")
}

func (tr *traffic) stop() {
	tr.cancel()
	<-tr.done
}

// TestClusterFailover runs three masters with a replica each and SIGKILLs
// the master of one shard during traffic: its replica takes over, the store
// follows without being made again, and a token used with wait_replicas: 1
// (WAIT on the shard's own connection) just before the kill stays used.
func TestClusterFailover(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t, 3, 1)
	waitCfg := clusterConfig(c)
	waitCfg.WaitReplicas, waitCfg.WaitTimeout = 1, 500*time.Millisecond
	waiting, plain := newModeStore(t, waitCfg), newModeStore(t, clusterConfig(c))
	ctx := context.Background()
	// Keys on the shard of Nodes[0], the master to be killed.
	onShard := func(prefix string) func(i int) string {
		return func(i int) string {
			for ; ; i++ {
				k := "corp:jti:" + prefix + strconv.Itoa(i)
				if n, err := c.NodeFor("tokenwise:" + k); err == nil && n == c.Nodes[0] {
					return k
				}
			}
		}
	}
	before := onShard("before-")(0)
	if ok, err := waiting.Use(ctx, before, 1, time.Minute); !ok || err != nil {
		t.Fatalf("use acknowledged by the shard's replica: %v, %v", ok, err)
	}
	next := onShard("traffic-")
	var last atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			call, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			ok, err := plain.Use(call, next(i*1000), 1, time.Minute)
			cancel()
			if ok && err == nil {
				last.Store(time.Now().UnixNano())
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	killed := time.Now()
	c.Nodes[0].Stop() // SIGKILL
	poll(t, 30*time.Second, "uses on the shard to answer after the failover", func() error {
		if last.Load() > killed.UnixNano() {
			return nil
		}
		return errors.New("no use on the shard succeeded yet")
	})
	t.Logf("uses on the failed shard answered again %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	close(stop)
	<-done
	// The waiting store was idle: its first call may still go to the dead
	// master, and it learns the new slot map from that failure.
	poll(t, 10*time.Second, "the token used before the kill to be refused", func() error {
		ok, err := waiting.Use(ctx, before, 1, time.Minute)
		if ok {
			t.Fatal("the token used before the kill was allowed again after the failover")
		}
		return err
	})
	if ok, err := plain.Use(ctx, onShard("after-")(0), 1, time.Minute); !ok || err != nil {
		t.Fatalf("use on the shard after the failover: %v, %v", ok, err)
	}
}
