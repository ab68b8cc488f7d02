package revoke

import (
	"context"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redisproc"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

func clusterConfig(c *redisproc.Cluster) config.UseLimits {
	return config.UseLimits{Store: "redis", Redis: config.Redis{
		Mode: config.RedisCluster, Addresses: c.Addrs(), KeyPrefix: "tw-test:"}}
}

// TestCluster runs the cluster tests on one three-master cluster (it takes
// seconds to start); the node restart comes last.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	t.Run("revocations reach every replica", func(t *testing.T) { testClusterReach(t, c) })
	t.Run("revocations recover after a node restart", func(t *testing.T) { testClusterRestart(t, c) })
}

// testClusterReach: in a cluster the set's changes go over sharded pub/sub,
// on the shard of the set's hash, and reach every replica.
func testClusterReach(t *testing.T, c *redisproc.Cluster) {
	a, b := newSet(t, clusterConfig(c)), newSet(t, clusterConfig(c))
	owner, err := c.NodeFor("tw-test:revocations")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "both replicas subscribe on the owning shard", func() bool {
		n, err := redisproc.Do(owner.Addr(), "PUBSUB", "SHARDNUMSUB", "tw-test:revocations")
		return err == nil && n == "tw-test:revocations\n2"
	})
	ctx := context.Background()
	tok := token("corp", "j1", "alice", time.Now())
	if _, err := a.RevokeToken(ctx, "corp", "j1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Within a second on an idle machine; the bound is generous for a busy
	// one, and far below the 30s periodic reload, so only the message can
	// make it.
	eventually(t, 3*time.Second, "replica b learns of the revocation", func() bool {
		revoked, _ := b.Revoked(tok)
		return revoked
	})
	t.Logf("the revocation reached the other replica in %v", time.Since(start))
}

// testClusterRestart: when the node serving the set restarts (empty, as
// after losing its data), every replica subscribes again and reloads, so
// later changes reach them.
func testClusterRestart(t *testing.T, c *redisproc.Cluster) {
	a, b := newSet(t, clusterConfig(c)), newSet(t, clusterConfig(c))
	owner, err := c.NodeFor("tw-test:revocations")
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitOK(); err != nil {
		t.Fatal(err)
	}
	tok := token("corp", "after-restart", "", time.Now())
	eventually(t, 15*time.Second, "a revocation is stored after the restart", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := a.RevokeToken(ctx, "corp", "after-restart", time.Now().Add(time.Hour))
		return err == nil
	})
	eventually(t, 15*time.Second, "replica b catches up after the restart", func() bool {
		revoked, _ := b.Revoked(tok)
		return revoked
	})
}
