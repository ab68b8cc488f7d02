package uselimit

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"

	"github.com/tokenwise/tokenwise/authz/timeheap"
)

const (
	// shardCount spreads keys over independently locked maps so concurrent
	// checks of different tokens rarely wait for each other.
	shardCount = 64
	// sweepInterval is how often the janitor frees expired counts. It only
	// decides when memory is freed: reads treat a count past its expiry as
	// absent, so counts vanish on time whatever the janitor does.
	sweepInterval = time.Second
)

// digest identifies a key by the first 16 bytes of its SHA-256. Storing it
// instead of the key string keeps an entry small and free of pointers (the GC
// never scans the maps' contents). 128 bits make an accidental collision
// practically impossible, and SHA-256 leaves an attacker nothing to aim at.
type digest [16]byte

// entry is one live count.
type entry struct {
	expiry int64 // unix nanoseconds; the count is gone at and after this instant
	count  int64
}

// shard is one lock's worth of counts with its own expiry queue.
type shard struct {
	mu     sync.Mutex
	counts map[digest]entry
	// expiries is a min-heap of every count's expiry, so the janitor finds
	// what expired without scanning. It costs 24 bytes a count however the
	// expiries spread, where a wheel of per-second buckets costs more when
	// expiries are far apart.
	expiries timeheap.Heap[digest]
	_        [64]byte // keeps neighbouring shards' locks off one cache line
}

// Memory is the in-process Store: counts live in this process only, so it
// suits a single replica. It is safe for any number of concurrent callers.
// A janitor goroutine frees expired counts once a second by popping them
// off per-shard expiry heaps, never by scanning all counts.
type Memory struct {
	shards    [shardCount]shard
	now       func() int64 // unix nanoseconds; replaced in tests
	stop      chan struct{}
	closeOnce sync.Once
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store and starts its janitor; Close stops it.
func NewMemory() *Memory {
	m := newMemory(func() int64 { return time.Now().UnixNano() })
	go m.janitor(sweepInterval)
	return m
}

// newMemory returns a store with the clock now and no janitor.
func newMemory(now func() int64) *Memory {
	m := &Memory{now: now, stop: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].counts = make(map[digest]entry)
	}
	return m
}

// Use records one use of key if fewer than limit uses are counted, and
// reports whether it did. The count stops at limit, so it is the number of
// uses allowed. A limit below 1 allows nothing and records nothing; ttl is
// clamped to [MinTTL, MaxTTL].
func (m *Memory) Use(_ context.Context, key string, limit int64, ttl time.Duration) (bool, error) {
	if limit < 1 {
		return false, nil
	}
	d := hashKey(key)
	s := &m.shards[d[0]%shardCount]
	now := m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.counts[d]
	if !ok || e.expiry <= now {
		e = entry{expiry: now + int64(clampTTL(ttl))}
		s.expiries.Push(e.expiry, d)
	}
	if e.count >= limit {
		return false, nil
	}
	e.count++
	s.counts[d] = e
	return true, nil
}

// Uses returns the number of allowed uses of key (0 when absent or expired).
func (m *Memory) Uses(_ context.Context, key string) (int64, error) {
	d := hashKey(key)
	s := &m.shards[d[0]%shardCount]
	now := m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.counts[d]; ok && e.expiry > now {
		return e.count, nil
	}
	return 0, nil
}

// Close stops the janitor. The store keeps answering afterwards, but expired
// counts are then only dropped when their key is used again.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	return nil
}

// janitor sweeps every interval until Close.
func (m *Memory) janitor(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep(m.now())
		}
	}
}

// sweep frees every count expired at now, one shard lock at a time.
func (m *Memory) sweep(now int64) {
	for i := range m.shards {
		m.shards[i].sweep(now)
	}
}

// len is the number of entries held, expired or not (for tests).
func (m *Memory) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.counts)
		s.mu.Unlock()
	}
	return n
}

// sweep drops every count expired at now. A key can be queued twice when
// its count expired and was renewed before a sweep, so the count's own
// expiry decides.
func (s *shard) sweep(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.expiries.Due(now) {
		d := s.expiries.Pop().Key
		if e, ok := s.counts[d]; ok && e.expiry <= now {
			delete(s.counts, d)
		}
	}
	s.expiries.Shrink()
}

// hashKey digests key without copying it: sha256 only reads its input.
func hashKey(key string) digest {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(key), len(key)))
	return digest(sum[:16])
}
