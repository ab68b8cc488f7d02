package ratelimit

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/authz/timeheap"
)

const (
	// memShards spreads keys over independently locked maps, so concurrent
	// requests for different keys rarely wait for each other.
	memShards = 64
	// DefaultMaxKeys is how many keys a memory store holds at most.
	DefaultMaxKeys = 1 << 20
	// expireAtOnce is how many heap entries one Take looks at to free keys
	// in a shard over half full, so that cost is spread over the requests.
	// The key cap bounds memory whatever the rate of freeing.
	expireAtOnce = 2
)

// bucketID identifies a limit's key by a 128-bit hash of its name and key,
// seeded per process: entries are small, fixed-size and free of pointers (the
// GC never scans the maps), and nobody can aim collisions at an unknown seed.
type bucketID [2]uint64

// memShard is one lock's worth of keys. tats maps a key to its theoretical
// arrival time; expiry is a min-heap holding each key exactly once, ordered
// by the time the key had when it was queued. A Take that moves a key's time
// leaves the heap alone (O(1)); when the key reaches the top, its current
// time decides whether it is freed or queued again. Keys are freed by
// popping the heap, never by scanning the map.
type memShard struct {
	mu     sync.Mutex
	tats   map[bucketID]int64
	expiry timeheap.Heap[bucketID]
	_      [64]byte // keeps neighbouring shards' locks off one cache line
}

// Memory is the in-process Store: limits hold for this process only, so it
// suits a single replica. It holds at most maxKeys keys; when full, a new key
// pushes out the key whose bucket refills first (the one that remembers the
// least), so memory stays bounded whatever keys a policy invents.
type Memory struct {
	shards    [memShards]memShard
	seeds     [2]maphash.Seed
	perShard  int
	now       func() int64 // unix nanoseconds; replaced in tests
	stop      chan struct{}
	closeOnce sync.Once
}

var _ Store = (*Memory)(nil)

// sweepInterval is how often the janitor frees the keys no Take freed. It
// only decides when memory is freed: a key whose time has passed is a full
// bucket, freed or not.
const sweepInterval = time.Second

// NewMemory returns an empty memory store that holds at most maxKeys keys
// (DefaultMaxKeys when maxKeys < 1), and starts its janitor; Close stops it.
func NewMemory(maxKeys int) *Memory {
	m := newMemory(maxKeys, func() int64 { return time.Now().UnixNano() })
	go m.janitor()
	return m
}

// janitor sweeps every shard once a sweepInterval until Close.
func (m *Memory) janitor() {
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.sweep()
		}
	}
}

// sweep frees every expired key, shard by shard, popping each shard's heap
// until its top is in the future: the work is the expired keys, not all keys.
func (m *Memory) sweep() {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.expire(m.now(), len(s.expiry))
		s.mu.Unlock()
	}
}

func newMemory(maxKeys int, now func() int64) *Memory {
	if maxKeys < 1 {
		maxKeys = DefaultMaxKeys
	}
	m := &Memory{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, perShard: max(1, maxKeys/memShards), now: now, stop: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].tats = make(map[bucketID]int64)
	}
	return m
}

func (m *Memory) id(l Limit) bucketID {
	var id bucketID
	for i, seed := range m.seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		h.WriteString(l.Name)
		h.WriteByte(0)
		h.WriteString(l.Key)
		id[i] = h.Sum64()
	}
	return id
}

// Take checks every limit and takes from all of them or none. The shards of
// the limits are locked together, in index order so that two requests never
// wait for each other in a cycle.
func (m *Memory) Take(_ context.Context, limits []Limit) (Result, error) {
	var idsBuf [4]bucketID
	var shardsBuf [4]int
	ids, shards := idsBuf[:0], shardsBuf[:0]
	for _, l := range limits {
		id := m.id(l)
		ids = append(ids, id)
		shards = append(shards, int(id[0]%memShards))
	}
	locked := lockOrder(shards)
	for _, s := range locked {
		m.shards[s].mu.Lock()
	}
	now := m.now()
	res := m.take(limits, ids, shards, now)
	for _, s := range locked {
		// A shard over half full frees a few expired keys on each Take, so
		// it seldom reaches its cap; below that the janitor's sweep is
		// enough, and Takes skip the heap work.
		if sh := &m.shards[s]; len(sh.tats) > m.perShard/2 {
			sh.expire(now, expireAtOnce)
		}
		m.shards[s].mu.Unlock()
	}
	return res, nil
}

// lockOrder is the distinct shard indexes, ascending.
func lockOrder(shards []int) []int {
	if len(shards) == 1 {
		return shards
	}
	out := slices.Clone(shards)
	slices.Sort(out)
	return slices.Compact(out)
}

// take runs GCRA for every limit with the shards locked, and stores the new
// times only when every limit allowed the request.
func (m *Memory) take(limits []Limit, ids []bucketID, shards []int, now int64) Result {
	res := Result{Allowed: true, Statuses: make([]Status, len(limits))}
	var nextBuf [4]int64
	next := nextBuf[:0]
	for i, l := range limits {
		tat, st := step(l, m.shards[shards[i]].tats[ids[i]], now)
		res.Statuses[i] = st
		res.Allowed = res.Allowed && st.Allowed
		next = append(next, tat)
	}
	if !res.Allowed {
		return res
	}
	for i := range limits {
		m.shards[shards[i]].store(ids[i], next[i], now, m.perShard)
	}
	return res
}

// store sets id's time; a new key is queued for expiry, pushing out the key
// that refills first when the shard is full.
func (s *memShard) store(id bucketID, tat, now int64, limit int) {
	if tat <= now { // a full bucket needs no key (cost 0 on a full bucket)
		return
	}
	if _, ok := s.tats[id]; ok {
		s.tats[id] = tat
		return
	}
	if len(s.tats) >= limit {
		s.evict()
	}
	s.tats[id] = tat
	s.expiry.Push(tat, id)
}

// expire frees keys whose buckets are full again (time ≤ now), looking at n
// heap entries at most, so no Take pays for a long backlog.
func (s *memShard) expire(now int64, n int) {
	for ; n > 0 && s.expiry.Due(now); n-- {
		q := s.expiry.Pop()
		if tat := s.tats[q.Key]; tat > now {
			s.expiry.Push(tat, q.Key) // used since it was queued: not yet
			continue
		}
		delete(s.tats, q.Key)
	}
}

// evict frees the key at the top of the heap: the earliest to refill among
// the times the keys were queued with.
func (s *memShard) evict() {
	if len(s.expiry) == 0 {
		return
	}
	delete(s.tats, s.expiry.Pop().Key)
}

// Len is the number of keys the store holds.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

// Close stops the janitor.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	return nil
}
