package uselimit

import (
	"context"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a store clock that moves only when told to.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// hammer calls use from n goroutines released at once and counts the allowed calls.
func hammer(t *testing.T, n int, use func() (bool, error)) int64 {
	t.Helper()
	var allowed, failed atomic.Int64
	var start, done sync.WaitGroup
	start.Add(1)
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			ok, err := use()
			if err != nil {
				failed.Add(1)
			}
			if ok {
				allowed.Add(1)
			}
		}()
	}
	start.Done()
	done.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	return allowed.Load()
}

func TestMemoryLimitIsExactUnderConcurrency(t *testing.T) {
	for _, limit := range []int64{1, 4, 199, 200} {
		t.Run(strconv.FormatInt(limit, 10), func(t *testing.T) {
			m := NewMemory()
			defer m.Close()
			ctx := context.Background()
			got := hammer(t, 200, func() (bool, error) { return m.Use(ctx, "corp:jti:x", limit, time.Minute) })
			if got != limit {
				t.Fatalf("allowed %d of 200 uses, want %d", got, limit)
			}
			if n, _ := m.Uses(ctx, "corp:jti:x"); n != limit {
				t.Fatalf("Uses = %d, want %d", n, limit)
			}
		})
	}
}

func TestMemoryKeysAreIndependentUnderConcurrency(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	ctx := context.Background()
	var i atomic.Int64
	// 400 goroutines on 100 keys with limit 2: each key allows exactly 2 of its 4 uses.
	got := hammer(t, 400, func() (bool, error) {
		return m.Use(ctx, "corp:jti:"+strconv.FormatInt(i.Add(1)%100, 10), 2, time.Minute)
	})
	if got != 200 {
		t.Fatalf("allowed %d, want 200", got)
	}
	for k := range 100 {
		if n, _ := m.Uses(ctx, "corp:jti:"+strconv.Itoa(k)); n != 2 {
			t.Fatalf("key %d: Uses = %d, want 2", k, n)
		}
	}
}

func TestMemoryCountExpires(t *testing.T) {
	clock := newFakeClock()
	m := newMemory(clock.now)
	ctx := context.Background()
	if ok, _ := m.Use(ctx, "k", 1, 5*time.Second); !ok {
		t.Fatal("first use denied")
	}
	clock.advance(5*time.Second - 1)
	if ok, _ := m.Use(ctx, "k", 1, 5*time.Second); ok {
		t.Fatal("second use allowed before the count expired")
	}
	if n, _ := m.Uses(ctx, "k"); n != 1 {
		t.Fatalf("Uses before expiry = %d, want 1", n)
	}
	clock.advance(1)
	if n, _ := m.Uses(ctx, "k"); n != 0 {
		t.Fatalf("Uses at expiry = %d, want 0", n)
	}
	// The renewed count starts again and lives its own ttl.
	if ok, _ := m.Use(ctx, "k", 1, 5*time.Second); !ok {
		t.Fatal("use after expiry denied")
	}
	if n, _ := m.Uses(ctx, "k"); n != 1 {
		t.Fatalf("Uses after renewal = %d, want 1", n)
	}
}

func TestMemoryExpiryIsFromFirstUse(t *testing.T) {
	clock := newFakeClock()
	m := newMemory(clock.now)
	ctx := context.Background()
	m.Use(ctx, "k", 3, 10*time.Second)
	clock.advance(9 * time.Second)
	// A later use with a longer ttl does not extend the count's life.
	m.Use(ctx, "k", 3, time.Hour)
	clock.advance(time.Second)
	if n, _ := m.Uses(ctx, "k"); n != 0 {
		t.Fatalf("Uses = %d after the first use's ttl, want 0", n)
	}
}

func TestMemorySweepFreesOnlyExpired(t *testing.T) {
	clock := newFakeClock()
	m := newMemory(clock.now)
	ctx := context.Background()
	for i := range 1000 {
		ttl := 10 * time.Second
		if i%2 == 0 {
			ttl = time.Hour
		}
		m.Use(ctx, "k"+strconv.Itoa(i), 1, ttl)
	}
	m.sweep(clock.now())
	if n := m.len(); n != 1000 {
		t.Fatalf("sweep before expiry left %d entries, want 1000", n)
	}
	clock.advance(11 * time.Second)
	m.sweep(clock.now())
	if n := m.len(); n != 500 {
		t.Fatalf("sweep left %d entries, want the 500 long-lived ones", n)
	}
	if n, _ := m.Uses(ctx, "k0"); n != 1 {
		t.Fatalf("long-lived count lost: Uses = %d", n)
	}
	clock.advance(time.Hour)
	m.sweep(clock.now())
	if n := m.len(); n != 0 {
		t.Fatalf("sweep after every expiry left %d entries", n)
	}
}

func TestMemorySweepKeepsRenewedCount(t *testing.T) {
	clock := newFakeClock()
	m := newMemory(clock.now)
	ctx := context.Background()
	m.Use(ctx, "k", 1, 2*time.Second)
	clock.advance(3 * time.Second)
	// Renewed without a sweep in between: the key is queued twice.
	m.Use(ctx, "k", 1, time.Hour)
	m.sweep(clock.now())
	if n, _ := m.Uses(ctx, "k"); n != 1 {
		t.Fatalf("sweep of the old expiry dropped the renewed count: Uses = %d", n)
	}
}

func TestMemoryJanitorFreesExpired(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	ctx := context.Background()
	for i := range 100 {
		m.Use(ctx, "k"+strconv.Itoa(i), 1, MinTTL)
	}
	// Waits for an event (the janitor's sweep), bounded so a broken janitor fails.
	deadline := time.Now().Add(10 * time.Second)
	for m.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %d expired entries", m.len())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMemoryEdgeArguments(t *testing.T) {
	clock := newFakeClock()
	m := newMemory(clock.now)
	ctx := context.Background()
	if ok, _ := m.Use(ctx, "zero", 0, time.Minute); ok {
		t.Fatal("limit 0 allowed a use")
	}
	if n, _ := m.Uses(ctx, "zero"); n != 0 {
		t.Fatalf("limit 0 recorded %d uses", n)
	}
	if ok, _ := m.Use(ctx, "short", 1, 0); !ok {
		t.Fatal("ttl 0 denied the first use")
	}
	clock.advance(MinTTL - 1)
	if n, _ := m.Uses(ctx, "short"); n != 1 {
		t.Fatal("ttl 0 was not raised to MinTTL")
	}
	// A ttl that would overflow the expiry still makes a count that holds.
	for range 2 {
		m.Use(ctx, "forever", 1, time.Duration(math.MaxInt64))
	}
	if n, _ := m.Uses(ctx, "forever"); n != 1 {
		t.Fatalf("huge ttl: Uses = %d, want 1", n)
	}
	if n, _ := m.Uses(ctx, "never-used"); n != 0 {
		t.Fatalf("Uses of an unknown key = %d", n)
	}
}

func TestMemoryCloseIsIdempotent(t *testing.T) {
	m := NewMemory()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// liveCounts is the number of counts the memory bound is stated for.
const liveCounts = 1_000_000

// maxHeapForLiveCounts is the bound: 1,000,000 live counts in at most 200 MB.
const maxHeapForLiveCounts = 200 << 20

func TestMemoryMillionCountsFitInBound(t *testing.T) {
	used, m := heapForCounts(liveCounts)
	defer m.Close()
	t.Logf("%d live counts: %.1f MB heap, %.1f bytes per count", liveCounts, float64(used)/(1<<20), float64(used)/liveCounts)
	if used > maxHeapForLiveCounts {
		t.Fatalf("%d live counts use %d bytes of heap, bound is %d", liveCounts, used, maxHeapForLiveCounts)
	}
	if got := m.len(); got != liveCounts {
		t.Fatalf("store holds %d counts, want %d", got, liveCounts)
	}
}

// heapForCounts fills a memory store with n counts under realistic keys and
// returns the heap growth it caused after garbage collection.
func heapForCounts(n int) (uint64, *Memory) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := NewMemory()
	ctx := context.Background()
	buf := []byte("corporate-idp:jti:0f8fad5b-d9cb-469f-a165-70867728950e-")
	prefix := len(buf)
	for i := range n {
		buf = strconv.AppendInt(buf[:prefix], int64(i), 10)
		// Expiries spread over an hour, as real tokens' would be.
		m.Use(ctx, string(buf), 1, time.Duration(i%86400)*time.Second+time.Hour)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - before.HeapAlloc, m
}
