package uselimit

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
)

// New returns the store cfg.Store names ("memory" or "redis"), wrapped so
// every call's latency and failure are recorded in m (which may be nil).
func New(cfg config.UseLimits, m *observe.Metrics) (Store, error) {
	var s Store
	switch cfg.Store {
	case "memory", "":
		s = NewMemory()
	case "redis":
		r, err := NewRedis(cfg.Redis)
		if err != nil {
			return nil, err
		}
		m.StoreNodes("redis", r.probeNodes)
		s = r
	default:
		return nil, fmt.Errorf("uselimit: unknown store %q: want memory or redis", cfg.Store)
	}
	return &metered{Store: s, name: storeName(cfg.Store), metrics: m}, nil
}

// storeName is the metrics label of a configured store.
func storeName(store string) string {
	if store == "" {
		return "memory"
	}
	return store
}

// metered records each call of the Store it wraps with Metrics.StoreCall.
type metered struct {
	Store
	name    string
	metrics *observe.Metrics
}

// Use calls the wrapped store's Use and records it.
func (s *metered) Use(ctx context.Context, key string, limit int64, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := s.Store.Use(ctx, key, limit, ttl)
	s.metrics.StoreCall(s.name, time.Since(start), err)
	return ok, err
}

// Uses calls the wrapped store's Uses and records it.
func (s *metered) Uses(ctx context.Context, key string) (int64, error) {
	start := time.Now()
	n, err := s.Store.Uses(ctx, key)
	s.metrics.StoreCall(s.name, time.Since(start), err)
	return n, err
}
