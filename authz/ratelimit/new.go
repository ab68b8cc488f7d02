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
		return NewRedis(client, uc.Redis.KeyPrefix, rc.Timeout), nil
	}
	return nil, fmt.Errorf("ratelimit: unknown store %q: want memory or redis", uc.Store)
}
