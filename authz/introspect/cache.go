package introspect

import (
	"encoding/binary"
	"sync"
	"time"
)

const cacheShards = 16

// cache remembers answers by the SHA-256 of their token: the token itself is
// never kept. It is bounded in entries: a full shard first drops an expired
// entry it finds, else an arbitrary one (Go's map order), so there is no
// bookkeeping on the hot path.
type cache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[[32]byte]cacheEntry
}

type cacheEntry struct {
	answer *Answer
	until  int64 // Unix nanoseconds after which the entry is not used
}

// newCache makes a cache for about size answers; nil (no caching) when size < 1.
func newCache(size int) *cache {
	if size < 1 {
		return nil
	}
	c := &cache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[[32]byte]cacheEntry)
	}
	return c
}

// shard picks by the hash's first bytes, which are uniformly random.
func (c *cache) shard(hash *[32]byte) *cacheShard {
	return &c.shards[binary.LittleEndian.Uint64(hash[:8])%cacheShards]
}

// get returns the cached answer for the token with this hash, or nil.
func (c *cache) get(hash *[32]byte, now time.Time) *Answer {
	if c == nil {
		return nil
	}
	s := c.shard(hash)
	s.mu.RLock()
	e, ok := s.entries[*hash]
	s.mu.RUnlock()
	if !ok || now.UnixNano() >= e.until {
		return nil
	}
	return e.answer
}

// put remembers a until the given time.
func (c *cache) put(a *Answer, until, now time.Time) {
	if c == nil {
		return
	}
	s := c.shard(&a.TokenHash)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[a.TokenHash]; !ok && len(s.entries) >= c.perShard {
		s.evictLocked(now.UnixNano())
	}
	s.entries[a.TokenHash] = cacheEntry{answer: a, until: until.UnixNano()}
}

// evictLocked drops one entry, an expired one if the first few looked at
// include one.
func (s *cacheShard) evictLocked(now int64) {
	const look = 8
	var victim [32]byte
	n := 0
	for k, e := range s.entries {
		victim = k
		if e.until <= now || n >= look {
			break
		}
		n++
	}
	delete(s.entries, victim)
}

// len is the number of entries, expired ones included (for tests).
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
