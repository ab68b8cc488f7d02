package policy

import (
	"slices"
	"sync"
	"sync/atomic"
)

// cacheKey identifies one decision: a SHA-256 over the policy's digest and
// the values at the input paths the policy reads.
type cacheKey [32]byte

// decisionCache remembers decisions, at most size of them. It is split in
// shards so concurrent Checks rarely wait on one lock; a hit takes only a
// read lock. When a shard is full, CLOCK (second chance) picks the entry to
// drop: one not used since the hand last passed it.
type decisionCache struct {
	shards []cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	index map[cacheKey]int
	slots []cacheSlot
	max   int
	hand  int
}

type cacheSlot struct {
	key cacheKey
	d   Decision
	// deadline is when the decision stops being good (UnixNano; 0: never):
	// the exp of the token it was made for.
	deadline int64
	used     atomic.Bool
}

// cacheShards is the most shards a cache has.
const cacheShards = 16

// newDecisionCache returns a cache of size entries; nil when size <= 0.
func newDecisionCache(size int) *decisionCache {
	if size <= 0 {
		return nil
	}
	n := min(cacheShards, size)
	c := &decisionCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		// The remainder goes to the first shards, so the total is size.
		max := size / n
		if i < size%n {
			max++
		}
		c.shards[i] = cacheShard{index: make(map[cacheKey]int, max), max: max}
	}
	return c
}

func (c *decisionCache) shard(k cacheKey) *cacheShard {
	return &c.shards[int(k[0])%len(c.shards)]
}

// get returns the decision remembered for k, unless it expired by now.
func (c *decisionCache) get(k cacheKey, now int64) (Decision, bool) {
	s := c.shard(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.index[k]
	if !ok {
		return Decision{}, false
	}
	slot := &s.slots[i]
	if slot.deadline != 0 && now >= slot.deadline {
		return Decision{}, false
	}
	if !slot.used.Load() {
		slot.used.Store(true)
	}
	return slot.d, true
}

// put remembers d for k until deadline (0: no deadline of its own). A
// decision already past its deadline is not stored.
func (c *decisionCache) put(k cacheKey, d Decision, deadline, now int64) {
	if deadline != 0 && now >= deadline {
		return
	}
	d = shareable(d)
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[k]; ok {
		s.slots[i].d, s.slots[i].deadline = d, deadline
		return
	}
	if len(s.slots) < s.max {
		s.slots = append(s.slots, cacheSlot{key: k, d: d, deadline: deadline})
		s.index[k] = len(s.slots) - 1
		return
	}
	i := s.victim()
	delete(s.index, s.slots[i].key)
	s.slots[i].key, s.slots[i].d, s.slots[i].deadline = k, d, deadline
	s.slots[i].used.Store(false)
	s.index[k] = i
}

// victim advances the CLOCK hand to an entry not used since its last pass.
func (s *cacheShard) victim() int {
	for {
		i := s.hand
		s.hand = (s.hand + 1) % len(s.slots)
		if !s.slots[i].used.Swap(false) {
			return i
		}
	}
}

// len is the number of decisions remembered.
func (c *decisionCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.index)
		s.mu.RUnlock()
	}
	return n
}

// shareable makes d safe to hand to many Checks at once: every slice is
// clipped to its length, so a caller appending to one gets a copy instead of
// writing into the shared array. Callers only read the rest.
func shareable(d Decision) Decision {
	d.Headers = slices.Clip(d.Headers)
	d.RequestHeadersToRemove = slices.Clip(d.RequestHeadersToRemove)
	d.ResponseHeadersToAdd = slices.Clip(d.ResponseHeadersToAdd)
	d.QueryParametersToSet = slices.Clip(d.QueryParametersToSet)
	d.QueryParametersToRemove = slices.Clip(d.QueryParametersToRemove)
	return d
}
