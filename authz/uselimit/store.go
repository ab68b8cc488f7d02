// Package uselimit enforces one-time and N-use tokens: it counts each allowed
// use of a token atomically in a store shared by every replica (Redis) or by
// one process (memory), and says when a token is past its limit.
package uselimit

import (
	"context"
	"time"
)

// Store counts uses of keys. Implementations are safe for concurrent use.
type Store interface {
	// Use records one use of key and reports whether it is within limit
	// (the first `limit` calls for a key are allowed, every later one is not).
	// The count disappears ttl after the first use. An error means the store
	// could not be asked; the caller decides whether to fail closed.
	Use(ctx context.Context, key string, limit int64, ttl time.Duration) (allowed bool, err error)
	// Uses returns the current count of key (0 when absent or expired).
	Uses(ctx context.Context, key string) (int64, error)
	// Close releases the store's resources.
	Close() error
}
