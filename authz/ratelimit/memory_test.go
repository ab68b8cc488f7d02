package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// clock is an injected clock a test moves by hand.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() int64              { return c.ns.Load() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func limit(name, key string, requests int64, per time.Duration, burst int64) Limit {
	return Limit{Name: name, Key: key, Requests: requests, Per: per, Burst: burst, Cost: 1}
}

func take(t *testing.T, s Store, limits ...Limit) Result {
	t.Helper()
	res, err := s.Take(context.Background(), limits)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBurstPassesAtOnceThenOnePerInterval(t *testing.T) {
	c := newClock()
	m := newMemory(0, c.now)
	l := limit("per-user", "alice", 10, time.Minute, 3) // one every 6s, 3 at once
	for i := range 3 {
		res := take(t, m, l)
		if !res.Allowed || res.Statuses[0].Remaining != int64(2-i) {
			t.Fatalf("request %d of the burst: %+v", i+1, res)
		}
	}
	res := take(t, m, l)
	if res.Allowed || res.Statuses[0].RetryAfter != 6*time.Second || res.Statuses[0].Remaining != 0 {
		t.Fatalf("past the burst: %+v, want refused with retry 6s", res)
	}
	if res.Statuses[0].Reset != 18*time.Second {
		t.Errorf("reset = %v, want 18s (three intervals until full)", res.Statuses[0].Reset)
	}
	c.advance(6*time.Second - time.Nanosecond)
	if take(t, m, l).Allowed {
		t.Fatal("allowed before the interval passed")
	}
	c.advance(time.Nanosecond)
	if !take(t, m, l).Allowed {
		t.Fatal("refused once the interval passed")
	}
	if take(t, m, l).Allowed {
		t.Fatal("one interval refilled more than one request")
	}
	c.advance(time.Hour) // long idle: back to the burst, never more
	for i := range 3 {
		if !take(t, m, l).Allowed {
			t.Fatalf("after idling, request %d refused", i+1)
		}
	}
	if take(t, m, l).Allowed {
		t.Fatal("idling saved up more than the burst")
	}
}

func TestNoDoubledBurstAtWindowEdges(t *testing.T) {
	c := newClock()
	m := newMemory(0, c.now)
	l := limit("w", "k", 60, time.Minute, 60)
	passed := 0
	// 2 minutes of one request every 100ms: at most burst + 120 s × 1/s.
	for range 1200 {
		if take(t, m, l).Allowed {
			passed++
		}
		c.advance(100 * time.Millisecond)
	}
	if passed > 60+120 || passed < 60+119 {
		t.Fatalf("passed %d in two minutes; want burst 60 + 120 refilled", passed)
	}
}

func TestCostTakesSeveral(t *testing.T) {
	c := newClock()
	m := newMemory(0, c.now)
	l := limit("bytes", "alice", 100, time.Second, 100)
	l.Cost = 60
	if res := take(t, m, l); !res.Allowed || res.Statuses[0].Remaining != 40 {
		t.Fatalf("first: %+v", res)
	}
	res := take(t, m, l)
	if res.Allowed || res.Statuses[0].Remaining != 40 || res.Statuses[0].RetryAfter != 200*time.Millisecond {
		t.Fatalf("second cost-60 request: %+v, want refused, 40 left, retry 200ms", res)
	}
	l.Cost = 40
	if !take(t, m, l).Allowed {
		t.Fatal("a cheaper request that fits was refused")
	}
	l.Cost = 0
	if res := take(t, m, l); !res.Allowed || res.Statuses[0].Remaining != 0 {
		t.Fatalf("cost 0 only looks: %+v", res)
	}
}

func TestStackedLimitsAreAllOrNothing(t *testing.T) {
	c := newClock()
	m := newMemory(0, c.now)
	burst := limit("burst", "alice", 100, time.Second, 100)
	quota := limit("tenant-quota", "acme", 2, time.Hour, 2)
	for range 2 {
		if !take(t, m, burst, quota).Allowed {
			t.Fatal("refused within both limits")
		}
	}
	res := take(t, m, burst, quota)
	if res.Allowed {
		t.Fatal("the exhausted quota let a request through")
	}
	if st, _ := res.Refused(); st.Limit.Name != "tenant-quota" {
		t.Errorf("refused by %q, want tenant-quota", st.Limit.Name)
	}
	// The refused request took nothing from the burst limit: 98 remain.
	if res := take(t, m, burst); res.Statuses[0].Remaining != 97 {
		t.Errorf("burst remaining after the refusal and one more = %d, want 97 (the refusal took nothing)", res.Statuses[0].Remaining)
	}
}

func TestResultReportsTheRightLimit(t *testing.T) {
	r := Result{Statuses: []Status{
		{Limit: Limit{Name: "a"}, Allowed: true, Remaining: 5, Reset: time.Second},
		{Limit: Limit{Name: "b"}, Remaining: 0, RetryAfter: 2 * time.Second},
		{Limit: Limit{Name: "c"}, Remaining: 0, RetryAfter: 9 * time.Second},
	}}
	if s, ok := r.Refused(); !ok || s.Limit.Name != "c" {
		t.Errorf("Refused = %q, want c (the longest wait)", s.Limit.Name)
	}
	r = Result{Allowed: true, Statuses: []Status{
		{Limit: Limit{Name: "a"}, Allowed: true, Remaining: 5},
		{Limit: Limit{Name: "b"}, Allowed: true, Remaining: 2, Reset: time.Second},
		{Limit: Limit{Name: "c"}, Allowed: true, Remaining: 2, Reset: time.Minute},
	}}
	if s, ok := r.Closest(); !ok || s.Limit.Name != "c" {
		t.Errorf("Closest = %q, want c (fewest left, longest reset)", s.Limit.Name)
	}
	if _, ok := r.Refused(); ok {
		t.Error("an allowed result reports a refusal")
	}
}

func TestKeysExpireWithoutAScanAndMemoryIsBounded(t *testing.T) {
	c := newClock()
	m := newMemory(memShards*100, c.now)
	l := limit("per-user", "", 10, time.Second, 10)
	for i := range 10_000 {
		l.Key = fmt.Sprint("user-", i)
		if !take(t, m, l).Allowed {
			t.Fatal("a fresh key was refused")
		}
	}
	if n := m.Len(); n > memShards*100 {
		t.Fatalf("store holds %d keys, over its cap of %d", n, memShards*100)
	}
	c.advance(time.Second) // every bucket is full again
	for i := range 2_000 { // Takes free expired keys of their shards as they go
		l.Key = fmt.Sprint("other-", i%5)
		take(t, m, l)
	}
	if n := m.Len(); n >= memShards*100 {
		t.Fatalf("%d keys left: Takes freed no expired key", n)
	}
	m.sweep() // the janitor frees the rest
	if n := m.Len(); n > 5 {
		t.Fatalf("%d keys left after a sweep; want only the 5 live ones", n)
	}
}

func TestMemoryStoreUnderConcurrency(t *testing.T) {
	c := newClock() // frozen: nothing refills during the test
	m := newMemory(0, c.now)
	const burst, workers, each = 500, 8, 200
	l := limit("shared", "k", 1, time.Hour, burst)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Each request also stacks a limit of its own, so shards are
				// locked in pairs, in every order.
				own := limit("own", fmt.Sprint(w, "-", i), 10, time.Second, 10)
				if res, _ := m.Take(context.Background(), []Limit{l, own}); res.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != burst {
		t.Fatalf("%d allowed of %d concurrent requests; want exactly the burst, %d", allowed.Load(), workers*each, burst)
	}
}

// TestMemoryPerKey measures the memory one key costs, so the cap can be
// sized: it must stay well under 200 bytes.
func TestMemoryPerKey(t *testing.T) {
	const n = 200_000
	before := heapInUse()
	m := NewMemory(n)
	l := limit("per-user", "", 10, time.Minute, 10)
	for i := range n {
		l.Key = fmt.Sprint("user-", i)
		if res, _ := m.Take(context.Background(), []Limit{l}); !res.Allowed {
			t.Fatal("a fresh key was refused")
		}
	}
	per := float64(heapInUse()-before) / float64(m.Len())
	t.Logf("%d keys: %.0f bytes per key", m.Len(), per)
	if per > 200 {
		t.Errorf("%.0f bytes per key; want under 200", per)
	}
	runtime.KeepAlive(m)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestValidate(t *testing.T) {
	ok := limit("n", "k", 100, time.Minute, 20)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Limit){
		"no name":        func(l *Limit) { l.Name = "" },
		"zero requests":  func(l *Limit) { l.Requests = 0 },
		"zero per":       func(l *Limit) { l.Per = 0 },
		"too fast":       func(l *Limit) { l.Requests, l.Per = 2_000_000, time.Second },
		"zero burst":     func(l *Limit) { l.Burst = 0 },
		"cost over":      func(l *Limit) { l.Cost = 21 },
		"negative cost":  func(l *Limit) { l.Cost = -1 },
		"far ahead":      func(l *Limit) { l.Requests, l.Per, l.Burst = 1, MaxPer, 100 },
		"per too long":   func(l *Limit) { l.Per = MaxPer + time.Hour },
		"requests large": func(l *Limit) { l.Requests = MaxCount + 1 },
	} {
		l := ok
		edit(&l)
		if l.Validate() == nil {
			t.Errorf("%s: %+v validated", name, l)
		}
	}
}

func BenchmarkMemoryParallel(b *testing.B) {
	m := NewMemory(0)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprint("user-", i)
	}
	var worker atomic.Int64
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := []Limit{limit("per-user", "", 1000, time.Millisecond*1000, 1000)}
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			l[0].Key = keys[i%len(keys)]
			i++
			if _, err := m.Take(context.Background(), l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	// On a shared machine the wall clock says how much CPU the benchmark
	// got; CPU time says what a decision costs. Decisions per CPU-second
	// times the cores is the rate the machine gives when it is not shared.
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "decisions/cpu-s")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
