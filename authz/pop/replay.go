package pop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit"
)

// ReplayStore remembers the proofs already seen, so each is accepted once.
// Implementations are safe for concurrent use.
type ReplayStore interface {
	// Claim records key for ttl. It reports false when key is already
	// recorded and not yet expired: the proof is a replay. An error means
	// the store could not be asked.
	Claim(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
	// Close releases the store's resources.
	Close() error
}

// replayKey names a proof in the store: a hash of the key's thumbprint and
// the proof's jti. The jti is scoped to the key, so one client cannot spend
// another's jti; the hash keeps client-chosen text out of the store's keys.
func replayKey(jkt, jti string) string {
	sum := sha256.Sum256([]byte(jkt + "\n" + jti))
	return "dpop:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewReplayStore returns the store use_limits names: memory (this process)
// or redis (every replica that shares the server), so replays are refused
// wherever the use counts are shared.
func NewReplayStore(cfg config.UseLimits) (ReplayStore, error) {
	if cfg.Store != "redis" {
		return NewMemoryReplay(), nil
	}
	client, err := uselimit.NewRedisClient(cfg.Redis, "tokenwise-dpop")
	if err != nil {
		return nil, fmt.Errorf("pop: %w", err)
	}
	return NewRedisReplay(client, cfg.Redis.KeyPrefix), nil
}

// MemoryReplay is the ReplayStore of one process.
type MemoryReplay struct {
	mu        sync.Mutex
	seen      map[string]time.Time // key → expiry
	nextSweep time.Time
	now       func() time.Time
}

// NewMemoryReplay returns an empty in-process store.
func NewMemoryReplay() *MemoryReplay {
	return &MemoryReplay{seen: map[string]time.Time{}, now: time.Now}
}

// Claim records key unless it is recorded and unexpired.
func (m *MemoryReplay) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.nextSweep) {
		m.sweep(now)
		// Sweeping every ttl keeps the map at about two lifetimes of proofs.
		m.nextSweep = now.Add(ttl)
	}
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.seen[key] = now.Add(ttl)
	return true, nil
}

func (m *MemoryReplay) sweep(now time.Time) {
	for k, exp := range m.seen {
		if !now.Before(exp) {
			delete(m.seen, k)
		}
	}
}

// Close does nothing.
func (m *MemoryReplay) Close() error { return nil }

// RedisReplay is the ReplayStore every replica shares: one SET NX PX per
// proof, atomic in Redis, so of two replicas seeing one proof only one wins.
type RedisReplay struct {
	client rueidis.Client
	prefix string
}

// NewRedisReplay stores keys under prefix in client's server.
func NewRedisReplay(client rueidis.Client, prefix string) *RedisReplay {
	return &RedisReplay{client: client, prefix: prefix}
}

// redisTimeout bounds a call whose context has no deadline.
const redisTimeout = 2 * time.Second

// Claim sets the key only if it does not exist, with ttl as its lifetime.
func (r *RedisReplay) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, redisTimeout)
		defer cancel()
	}
	ms := max(int64((ttl+time.Millisecond-1)/time.Millisecond), 1)
	cmd := r.client.B().Set().Key(r.prefix + key).Value("1").Nx().PxMilliseconds(ms).Build()
	err := r.client.Do(ctx, cmd).Error()
	switch {
	case err == nil:
		return true, nil
	case rueidis.IsRedisNil(err):
		return false, nil
	}
	return false, fmt.Errorf("pop: redis: %w", err)
}

// Close closes the connection.
func (r *RedisReplay) Close() error {
	r.client.Close()
	return nil
}
