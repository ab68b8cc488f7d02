package bench

import (
	"context"
	"fmt"
	"net/http"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// runStats is one measured run against one target.
type runStats struct {
	checks   int64
	errors   int64
	firstErr string
	elapsed  time.Duration
	// latencies are every Check's latency in nanoseconds, sorted; in an
	// open-loop run they count from when the Check was due.
	latencies []int64
	// service are open-loop latencies from when the Check was sent, sorted:
	// the difference to latencies is time spent waiting to be sent.
	service []int64
	cpu     time.Duration
	allocs  uint64
	// exhausted: the fresh tokens ran out before the duration was up.
	exhausted bool
	// rate is the open-loop target in Checks/s (0: closed loop).
	rate float64
}

// throughput is Checks per second.
func (r runStats) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.checks) / r.elapsed.Seconds()
}

// percentile is the latency below which a fraction p of the Checks fell.
func (r runStats) percentile(p float64) time.Duration { return percentile(r.latencies, p) }

// percentile is the value below which a fraction p of sorted fell.
func percentile(sorted []int64, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(p*float64(n)+0.999999) - 1
	return time.Duration(sorted[min(max(i, 0), n-1)])
}

// cpuPer1000 is process CPU seconds per 1000 Checks.
func (r runStats) cpuPer1000() float64 {
	if r.checks == 0 {
		return 0
	}
	return r.cpu.Seconds() * 1000 / float64(r.checks)
}

// allocsPerCheck is heap allocations (whole process) per Check.
func (r runStats) allocsPerCheck() float64 {
	if r.checks == 0 {
		return 0
	}
	return float64(r.allocs) / float64(r.checks)
}

// feed hands each Check its Authorization header value.
type feed struct {
	kind tokenKind
	// values are "Bearer <token>", built before the run so the load
	// generator does not allocate them while measuring.
	values []string
	// proofs are the DPoP headers beside values (nil: none).
	proofs []string
	next   atomic.Int64
}

func newFeed(kind tokenKind, tokens []string) *feed {
	f := &feed{kind: kind, values: make([]string, len(tokens))}
	for i, t := range tokens {
		f.values[i] = "Bearer " + t
	}
	return f
}

// value is the header for worker's i-th Check; ok is false when a fresh
// feed has run out.
func (f *feed) value(worker, i int) (v string, ok bool) {
	v, _, ok = f.valueAndProof(worker, i)
	return v, ok
}

// valueAndProof is value with the Check's DPoP proof, when the feed has proofs.
func (f *feed) valueAndProof(worker, i int) (v, proof string, ok bool) {
	switch f.kind {
	case pooled:
		// Workers walk the pool from different places.
		return f.values[(worker*997+i)%len(f.values)], "", true
	case fresh:
		n := f.next.Add(1) - 1
		if n >= int64(len(f.values)) {
			return "", "", false
		}
		if f.proofs != nil {
			proof = f.proofs[n]
		}
		return f.values[n], proof, true
	}
	return "", "", true
}

// load is one run's shared state.
type load struct {
	t        *target
	s        *scenario
	feed     *feed
	workers  int
	end      time.Time
	stop     atomic.Bool
	checks   atomic.Int64
	errors   atomic.Int64
	errOnce  sync.Once
	firstErr string
	lats     [][]int64
	// svc is per worker, like lats, for open-loop runs only.
	svc [][]int64
}

// worker holds one worker's reusable request.
type worker struct {
	l      *load
	id     int
	client authv3.AuthorizationClient
	req    *authv3.CheckRequest
	hdr    map[string]string
	reqID  []byte
	n      int
	// httpHdr is the HTTP scenarios' reusable header set.
	httpHdr http.Header
}

func (l *load) newWorker(id int) *worker {
	req := newRequest(l.s, id)
	w := &worker{l: l, id: id, req: req, hdr: req.Attributes.Request.Http.Headers}
	if len(l.t.clients) > 0 {
		w.client = l.t.clients[id%len(l.t.clients)]
	}
	// x-request-id is a UUID in Envoy; the last group carries the counter.
	w.reqID = fmt.Appendf(nil, "5f0c7b8e-3a3c-4c9e-%04x-", id&0xffff)
	return w
}

// check sends one Check and records its latency counted from start (when
// it was due); false when there is nothing to send.
func (w *worker) check(ctx context.Context, start time.Time) bool {
	if w.l.t.http != nil {
		return w.checkHTTP(ctx, start)
	}
	auth, proof, ok := w.l.feed.valueAndProof(w.id, w.n)
	if !ok {
		w.l.stop.Store(true)
		return false
	}
	if auth != "" {
		w.hdr["authorization"] = auth
	}
	if proof != "" {
		w.hdr["dpop"] = proof
	}
	w.hdr["x-request-id"] = string(strconv.AppendUint(w.reqID, uint64(w.n), 16))
	w.n++
	sent := time.Now()
	resp, err := w.client.Check(ctx, w.req)
	done := time.Now()
	w.l.lats[w.id] = append(w.l.lats[w.id], int64(done.Sub(start)))
	if w.l.svc != nil {
		w.l.svc[w.id] = append(w.l.svc[w.id], int64(done.Sub(sent)))
	}
	w.l.checks.Add(1)
	if err != nil {
		w.l.fail(err.Error())
	} else if got := statusOf(resp); got != w.l.s.wantStatus {
		w.l.fail(fmt.Sprintf("status %d, want %d (%s)", got, w.l.s.wantStatus, resp.GetStatus().GetMessage()))
	}
	return true
}

func (l *load) fail(msg string) {
	l.errors.Add(1)
	l.errOnce.Do(func() { l.firstErr = msg })
}

// run drives t with s for d: closed loop at workers in flight, or open loop
// at rate Checks/s when rate > 0.
func run(ctx context.Context, t *target, s *scenario, f *feed, workers int, d time.Duration, rate float64) runStats {
	l := &load{t: t, s: s, feed: f, workers: workers, lats: make([][]int64, workers)}
	for i := range l.lats {
		l.lats[i] = make([]int64, 0, 1024)
	}
	before := sample()
	start := time.Now()
	l.end = start.Add(d)
	if rate > 0 {
		l.svc = make([][]int64, workers)
		l.openLoop(ctx, start, rate)
	} else {
		l.closedLoop(ctx)
	}
	elapsed := time.Since(start)
	after := sample()
	st := runStats{
		checks: l.checks.Load(), errors: l.errors.Load(), firstErr: l.firstErr,
		elapsed: elapsed, cpu: after.cpu - before.cpu, allocs: after.allocs - before.allocs,
		exhausted: l.stop.Load(), rate: rate,
	}
	st.latencies = slices.Concat(l.lats...)
	slices.Sort(st.latencies)
	if l.svc != nil {
		st.service = slices.Concat(l.svc...)
		slices.Sort(st.service)
	}
	return st
}

// closedLoop keeps l.workers Checks in flight until the end or the feed runs out.
func (l *load) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for id := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := l.newWorker(id)
			for !l.stop.Load() && ctx.Err() == nil {
				now := time.Now()
				if now.After(l.end) || !w.check(ctx, now) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// openLoop sends Checks on a fixed schedule. Latency is measured from when
// a Check was due, not when a worker got to it, so a stall counts against
// every Check it delays (no coordinated omission).
func (l *load) openLoop(ctx context.Context, start time.Time, rate float64) {
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, 1<<16)
	var wg sync.WaitGroup
	for id := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := l.newWorker(id)
			for at := range due {
				if l.stop.Load() || ctx.Err() != nil || !w.check(ctx, at) {
					continue // drain the schedule
				}
			}
		}()
	}
	var sent int64
	for ctx.Err() == nil && !l.stop.Load() {
		now := time.Now()
		if now.After(l.end) {
			break
		}
		for n := int64(now.Sub(start)/interval) + 1; sent < n; sent++ {
			due <- start.Add(time.Duration(sent) * interval)
		}
		time.Sleep(interval)
	}
	close(due)
	wg.Wait()
}

// usage is the process's CPU time and heap allocation count at one moment.
type usage struct {
	cpu    time.Duration
	allocs uint64
}

// sample reads process CPU (user + system, every thread: the load
// generator and the servers share the process) and heap allocations.
func sample() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	m := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
	metrics.Read(m)
	var allocs uint64
	if m[0].Value.Kind() == metrics.KindUint64 {
		allocs = m[0].Value.Uint64()
	}
	return usage{cpu: cpu, allocs: allocs}
}
