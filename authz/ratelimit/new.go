package ratelimit

import (
	"fmt"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit"
)

// New returns the store for rate limits: where use_limits.store keeps use
// counts (memory or redis), so every replica that shares use counts shares
// rate limits too. The Redis store has a connection of its own, built as the
// use-limit store builds its own.
func New(uc config.UseLimits, rc config.RateLimits) (Store, error) {
	switch uc.Store {
	case "memory", "":
		return NewMemory(rc.MaxKeys), nil
	case "redis":
		client, err := uselimit.NewRedisClient(uc.Redis, "tokenwise-ratelimit")
		if err != nil {
			return nil, fmt.Errorf("ratelimit: %w", err)
		}
		r := NewRedis(client, uc.Redis.KeyPrefix, rc.Timeout)
		if uc.Redis.Mode == config.RedisCluster {
			// Stacked limits across shards are refunded when one refuses
			// (see exec), which moves a bucket's time back: a refusal can
			// no longer be remembered until its retry time.
			r.over = nil
		}
		return r, nil
	}
	return nil, fmt.Errorf("ratelimit: unknown store %q: want memory or redis", uc.Store)
}
