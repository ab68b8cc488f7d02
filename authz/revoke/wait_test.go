package revoke

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// With wait_replicas, a revocation is confirmed only once a replica has it:
// a hung replica makes RevokeToken an error, though the master has it.
func TestRedisRevocationWaitsForReplicas(t *testing.T) {
	g := redistest.StartReplicated(t, 1)
	cfg := redisConfig(g.Master.Addr())
	cfg.Redis.WaitReplicas, cfg.Redis.WaitTimeout = 1, 100*time.Millisecond
	s := newSet(t, cfg)
	ctx := context.Background()
	if _, err := s.RevokeToken(ctx, "corp", "acked", time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("revocation acknowledged by the replica: %v", err)
	}
	g.Replicas[0].Pause()
	defer g.Replicas[0].Resume()
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := s.RevokeToken(short, "corp", "unacked", time.Now().Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "acknowledged") {
		t.Fatalf("revocation with a hung replica: %v, want an acknowledgement error", err)
	}
	plain := newSet(t, config.UseLimits{Store: "redis", Redis: config.Redis{Address: g.Master.Addr(), KeyPrefix: "tw-test:"}})
	mustRevoked(t, plain, token("corp", "unacked", "", time.Now()), true) // on the master all the same
}
