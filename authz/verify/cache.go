package verify

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultCacheSize is how many verified tokens a Verifier remembers unless
// told otherwise.
const DefaultCacheSize = 10000

// maxCacheAge bounds how long a token without exp is remembered.
const maxCacheAge = 5 * time.Minute

const cacheShards = 32

// cache remembers verified tokens by their exact compact form, so a token
// reused across Checks costs a map lookup instead of a signature check and
// two JSON decodes. Only tokens that verified are kept, so an attacker
// cannot fill it with garbage. An entry is used no longer than the token is
// valid (exp plus leeway), and not at all once its issuer's key set has
// changed: a key withdrawn from the JWKS stops validating at the refresh that
// withdraws it, cached tokens included.
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	tok *Token
	// keys and generation say which key set verified the token.
	keys       *keySource
	generation uint64
	// until is when the entry stops being usable, in Unix nanoseconds.
	until int64
}

// newCache makes a cache for about size tokens; nil (no caching) when size < 1.
func newCache(size int) *cache {
	if size < 1 {
		return nil
	}
	c := &cache{seed: maphash.MakeSeed(), perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]cacheEntry)
	}
	return c
}

func (c *cache) shard(raw string) *cacheShard {
	return &c.shards[maphash.String(c.seed, raw)%cacheShards]
}

// get returns the verified token for raw, or nil.
func (c *cache) get(raw string, now time.Time) *Token {
	if c == nil {
		return nil
	}
	s := c.shard(raw)
	s.mu.RLock()
	e, ok := s.entries[raw]
	s.mu.RUnlock()
	if !ok || now.UnixNano() >= e.until || e.keys.generation.Load() != e.generation {
		return nil
	}
	return e.tok
}

// put remembers tok, verified with the key set of generation, for raw. A
// full shard drops an arbitrary entry (Go's map order): the cache stays
// bounded without bookkeeping on the hot path.
func (c *cache) put(raw string, tok *Token, keys *keySource, generation uint64, now time.Time) {
	if c == nil {
		return
	}
	until := now.Add(maxCacheAge)
	if !tok.Expiry.IsZero() {
		until = tok.Expiry.Add(tok.Leeway)
	}
	s := c.shard(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[raw]; !ok && len(s.entries) >= c.perShard {
		for k := range s.entries {
			delete(s.entries, k)
			break
		}
	}
	s.entries[raw] = cacheEntry{tok: tok, keys: keys, generation: generation, until: until.UnixNano()}
}
