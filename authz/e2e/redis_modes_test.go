package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redisproc"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
	tokenwisev1 "github.com/tokenwise/tokenwise/proto/tokenwise/v1"
)

func redisCluster(c *redisproc.Cluster) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.UseLimits.Store = "redis"
		cfg.UseLimits.Redis.Mode = config.RedisCluster
		cfg.UseLimits.Redis.Addresses = c.Addrs()
	}
}

func redisSentinel(g *redisproc.SentinelGroup, waitReplicas int) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.UseLimits.Store = "redis"
		cfg.UseLimits.Redis.Mode = config.RedisSentinel
		cfg.UseLimits.Redis.Addresses = g.Addrs()
		cfg.UseLimits.Redis.SentinelMaster = redisproc.SentinelMaster
		cfg.UseLimits.Redis.WaitReplicas = waitReplicas
	}
}

// Two replicas on a three-master Redis Cluster: use limits are exact, a
// revocation reaches the other replica, and /metrics reports every node.
func TestRedisClusterThroughTheGRPCServer(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	f := startFleet(t, 2, func(cfg *config.Config) { redisCluster(c)(cfg); withAdminToken(cfg) })
	mint := func(jti string) string {
		return f[0].issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": jti})
	}
	expectExactUseLimits(t, f, mint)
	for i := range 30 {
		if a := read(f[i%2].check(envoyRequest("POST", "/pay", bearer(mint(fmt.Sprintf("spread-%d", i)))))); !a.allowed {
			t.Fatalf("fresh one-time token %d refused: %+v", i, a)
		}
	}
	for _, n := range c.Nodes {
		if keys, err := redisproc.Do(n.Addr(), "DBSIZE"); err != nil || keys == "0" {
			t.Errorf("node %s holds %s keys (%v): the counts are not spread over the shards", n.Addr(), keys, err)
		}
	}

	revoked := f[0].ordersToken(map[string]any{"sub": "bob", "jti": "leaked-1"})
	if _, err := f[0].adminClient().RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "leaked-1"}); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, f, revoked)

	metricsShow(t, f[1], c.Addrs()...)
}

// metricsShow waits until h's /metrics reports every address as an up node
// (a probe can time out on a loaded machine, so a scrape is retried).
func metricsShow(t *testing.T, h *harness, addrs ...string) {
	t.Helper()
	var missing string
	ok := false
	deadline := time.Now().Add(10 * time.Second)
	for !ok && time.Now().Before(deadline) {
		_, metrics := h.get("/metrics")
		ok, missing = true, ""
		for _, addr := range addrs {
			if want := fmt.Sprintf(`tokenwise_use_limit_store_node_up{address=%q,store="redis"} 1`, addr); !strings.Contains(metrics, want) {
				ok, missing = false, want
			}
		}
		if !ok {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ok {
		t.Errorf("/metrics lacks %s", missing)
	}
}

// On Sentinel, the master SIGKILLed: while the failover lasts, limited
// requests get 503 and nothing else is affected; afterwards uses answer
// again without a restart, and the token used (with wait_replicas: 1) just
// before the kill is still refused.
func TestRedisSentinelFailoverThroughTheGRPCServer(t *testing.T) {
	g := redistest.StartSentinel(t, 1, 3)
	waiting := startFleet(t, 1, func(cfg *config.Config) { redisSentinel(g, 1)(cfg); withAdminToken(cfg) })[0]
	plain := start(t, redisSentinel(g, 0), withAdminToken, func(cfg *config.Config) {
		cfg.Issuers[0] = waiting.issuer.Config("corp")
		cfg.Issuers[0].Audiences = []string{"orders-api"}
	})
	plain.waitReady()
	mint := func(jti string) string {
		return waiting.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read", "jti": jti})
	}
	used := mint("used-before-kill")
	if a := read(waiting.check(envoyRequest("POST", "/pay", bearer(used)))); !a.allowed {
		t.Fatalf("first use refused: %+v", a)
	}
	// A revocation made before the kill, acknowledged by the replica.
	revokedBefore := waiting.ordersToken(map[string]any{"sub": "eve", "jti": "revoked-before-kill"})
	if _, err := waiting.adminClient().RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "revoked-before-kill"}); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, fleet{waiting, plain}, revokedBefore)

	killed := time.Now()
	g.Master.Stop()
	saw503 := false
	eventually(t, 30*time.Second, func() bool {
		if !allowed(plain, mint(fmt.Sprintf("plain-%d", time.Now().UnixNano()))) {
			t.Fatal("a token without a limit was refused during the failover")
		}
		a := read(plain.check(envoyRequest("POST", "/pay", bearer(mint(fmt.Sprintf("pay-%d", time.Now().UnixNano()))))))
		switch {
		case a.allowed:
			return true
		case a.status == 503:
			saw503 = true
		default:
			t.Fatalf("a fresh one-time token during the failover: %+v, want 503 or allowed", a)
		}
		return false
	})
	t.Logf("one-time tokens allowed again %v after the kill (503 seen meanwhile: %v)", time.Since(killed).Round(100*time.Millisecond), saw503)
	// The other replica follows the sentinels on its own: until it has, its
	// answer is a 503, never an allow.
	eventually(t, 10*time.Second, func() bool {
		a := read(waiting.check(envoyRequest("POST", "/pay", bearer(used))))
		if a.allowed || a.status != 401 && a.status != 503 {
			t.Fatalf("the token used before the kill, after the failover: %+v, want 401", a)
		}
		return a.status == 401
	})
	// The new master has no replica: wait_replicas: 1 cannot be met, a store error.
	if a := read(waiting.check(envoyRequest("POST", "/pay", bearer(mint("after-kill"))))); a.allowed || a.status != 503 {
		t.Fatalf("a use no replica can acknowledge: %+v, want 503", a)
	}

	// Revocations: the one made before the kill is still in force on a
	// fresh reload, and one made after it reaches the other replica over the
	// new master's pub/sub.
	if _, err := plain.adminClient().ListRevocations(asAdmin(adminToken), &tokenwisev1.ListRevocationsRequest{}); err != nil {
		t.Fatal(err)
	}
	refusedAsRevoked(t, plain, revokedBefore)
	revokedAfter := waiting.ordersToken(map[string]any{"sub": "eve", "jti": "revoked-after-kill"})
	if _, err := plain.adminClient().RevokeToken(asAdmin(adminToken), &tokenwisev1.RevokeTokenRequest{Issuer: "corp", Jti: "revoked-after-kill"}); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, fleet{waiting, plain}, revokedAfter)

	// /metrics names the master tokenwise follows now.
	master, err := g.MasterAddr()
	if err != nil {
		t.Fatal(err)
	}
	metricsShow(t, plain, master)
}
