package uselimit

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"
)

const (
	// shardCount spreads keys over independently locked maps so concurrent
	// checks of different tokens rarely wait for each other.
	shardCount = 64
	// bucketWidth is the granularity of the expiry wheel. It only decides
	// when memory is freed: reads treat an entry past its expiry as absent,
	// so counts vanish on time whatever the janitor does.
	bucketWidth = int64(time.Second)
	// sweepInterval is how often the janitor frees expired counts.
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

// shard is one lock's worth of counts with its own expiry wheel.
type shard struct {
	mu     sync.Mutex
	counts map[digest]entry
	// buckets holds, per expiry second, the keys whose counts expire in it.
	buckets map[int64][]digest
	// order is a min-heap of the bucket numbers present in buckets, so the
	// janitor finds expired buckets without scanning.
	order bucketHeap
	_     [64]byte // keeps neighbouring shards' locks off one cache line
}

// Memory is the in-process Store: counts live in this process only, so it
// suits a single replica. It is safe for any number of concurrent callers.
// A janitor goroutine frees expired counts once a second by popping expiry
// buckets, never by scanning all counts.
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
		m.shards[i].buckets = make(map[int64][]digest)
	}
	return m
}

// Use records one use of key if fewer than limit uses are counted, and
// reports whether it did. The count stops at limit, so it is the number of
// uses allowed. A limit below 1 allows nothing and records nothing; a ttl
// below MinTTL is raised to it.
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
		e = entry{expiry: now + int64(max(ttl, MinTTL))}
		s.schedule(d, e.expiry)
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

// schedule files d under the bucket its expiry falls in. Called with s.mu held.
func (s *shard) schedule(d digest, expiry int64) {
	// Round up: every key in bucket b expires at or before b*bucketWidth.
	b := (expiry + bucketWidth - 1) / bucketWidth
	keys, ok := s.buckets[b]
	if !ok {
		heap.Push(&s.order, b)
	}
	s.buckets[b] = append(keys, d)
}

// sweep drops the buckets that ended by now, and with them every count whose
// expiry has passed. A key can sit in an old bucket after its count was
// renewed, so the count's own expiry decides.
func (s *shard) sweep(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) > 0 && s.order[0]*bucketWidth <= now {
		b := heap.Pop(&s.order).(int64)
		for _, d := range s.buckets[b] {
			if e, ok := s.counts[d]; ok && e.expiry <= now {
				delete(s.counts, d)
			}
		}
		delete(s.buckets, b)
	}
}

// hashKey digests key without copying it: sha256 only reads its input.
func hashKey(key string) digest {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(key), len(key)))
	return digest(sum[:16])
}

// bucketHeap is a min-heap of bucket numbers for container/heap.
type bucketHeap []int64

func (h bucketHeap) Len() int           { return len(h) }
func (h bucketHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h bucketHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push appends x (an int64); container/heap restores the order.
func (h *bucketHeap) Push(x any) { *h = append(*h, x.(int64)) }

// Pop removes the last element; container/heap moved the minimum there.
func (h *bucketHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
