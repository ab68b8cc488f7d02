package pop

import (
	"context"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

func TestMemoryReplay(t *testing.T) {
	now := testNow
	m := NewMemoryReplay()
	m.now = func() time.Time { return now }
	claim := func(key string) bool {
		fresh, err := m.Claim(context.Background(), key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if !claim("a") || claim("a") || !claim("b") {
		t.Fatal("first claims must be fresh, the second of one key not")
	}
	now = now.Add(time.Minute + time.Second)
	if !claim("a") {
		t.Fatal("a key past its ttl is fresh again")
	}
	if _, ok := m.seen["b"]; ok {
		t.Fatal("expired keys are not swept")
	}
}

// TestRedisReplaySharedByReplicas: two stores on one real redis-server, as
// two replicas have them; a proof claimed through one is a replay at the other.
func TestRedisReplaySharedByReplicas(t *testing.T) {
	srv := redistest.Start(t)
	cfg := config.UseLimits{Store: "redis", Redis: config.Redis{Address: srv.Addr(), KeyPrefix: "tw-test:"}}
	a, err := NewReplayStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewReplayStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	key := replayKey("thumb", "jti-1")
	if fresh, err := a.Claim(ctx, key, time.Minute); err != nil || !fresh {
		t.Fatalf("first claim: %v, %v", fresh, err)
	}
	if fresh, err := b.Claim(ctx, key, time.Minute); err != nil || fresh {
		t.Fatalf("claim at the other replica: fresh=%v, %v; want a replay", fresh, err)
	}
	if fresh, err := b.Claim(ctx, replayKey("other-thumb", "jti-1"), time.Minute); err != nil || !fresh {
		t.Fatalf("same jti, other key: fresh=%v, %v", fresh, err)
	}
	srv.Stop()
	if _, err := a.Claim(ctx, replayKey("thumb", "jti-2"), time.Minute); err == nil {
		t.Fatal("a stopped server must be an error, never a fresh claim")
	}
}
