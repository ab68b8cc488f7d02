package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// pair is one round of one scenario: the floor run just before it, and it.
type pair struct {
	floor, run runStats
}

// runner runs the warm-up and the interleaved rounds.
type runner struct {
	opts      *Options
	env       *env
	scenarios []*scenario
	pairs     map[string][]pair
	// estimate is each scenario's last measured Checks/s, for sizing the
	// fresh tokens minted before its next run.
	estimate map[string]float64
}

// minFresh is the fewest fresh tokens minted for a run.
const minFresh = 256

// maxFresh caps the fresh tokens minted for one run; a run that uses them
// up ends early and is measured over the time it ran.
const maxFresh = 400_000

func (r *runner) run(ctx context.Context) error {
	r.pairs = map[string][]pair{}
	r.estimate = map[string]float64{}
	if err := r.warmUp(ctx); err != nil {
		return err
	}
	for round := 1; round <= r.opts.Rounds; round++ {
		for _, s := range r.scenarios {
			rate := r.rateFor(s)
			fl, err := r.measure(ctx, floorFor(s), r.opts.Duration, rate)
			if err != nil {
				return err
			}
			sc, err := r.measure(ctx, s, r.opts.Duration, rate)
			if err != nil {
				return err
			}
			r.pairs[s.name] = append(r.pairs[s.name], pair{floor: fl, run: sc})
			r.progress(round, s, fl, sc)
		}
	}
	return nil
}

// warmUp runs the floor and each scenario briefly, unmeasured: connections,
// JIT-like caches (the policy's, the allocator's) and the token estimates.
func (r *runner) warmUp(ctx context.Context) error {
	d := min(r.opts.Duration/3, time.Second)
	fmt.Fprintf(r.opts.Progress, "bench: warming up (%v per scenario)\n", d)
	for _, s := range append(r.floors(), r.scenarios...) {
		if _, err := r.measure(ctx, s, d, r.rateFor(s)); err != nil {
			return err
		}
	}
	return nil
}

// rateFor is the open-loop rate for s: --rate, or half of reuse's median
// throughput for reuse-half; 0 is closed loop.
func (r *runner) rateFor(s *scenario) float64 {
	if r.opts.Rate > 0 {
		return r.opts.Rate
	}
	if !s.halfRate {
		return 0
	}
	var rates []float64
	for _, p := range r.pairs["reuse"] {
		rates = append(rates, p.run.throughput())
	}
	if len(rates) == 0 {
		rates = []float64{r.estimate["reuse"]}
	}
	return max(median(rates)/2, 1)
}

// measure runs s once: tokens ready, garbage collected, then the clock.
func (r *runner) measure(ctx context.Context, s *scenario, d time.Duration, rate float64) (runStats, error) {
	f, err := r.feedFor(ctx, s, d, rate)
	if err != nil {
		return runStats{}, err
	}
	// Collect now so one run's garbage is not paid for in the next.
	runtime.GC()
	st := run(ctx, r.env.targetFor(s), s, f, r.opts.Concurrency, d, rate)
	if err := ctx.Err(); err != nil {
		return st, err
	}
	r.estimate[s.name] = max(st.throughput(), r.estimate[s.name]*0.8)
	return st, nil
}

// feedFor is the pool for pooled scenarios, or enough fresh tokens for d at
// the last measured rate plus a margin.
func (r *runner) feedFor(ctx context.Context, s *scenario, d time.Duration, rate float64) (*feed, error) {
	switch s.tokens {
	case pooled:
		return newFeed(pooled, r.env.pool), nil
	case noToken:
		return newFeed(noToken, nil), nil
	}
	n := minFresh
	est := r.estimate[s.name]
	if rate > 0 {
		est = rate
	}
	if est > 0 {
		// A measured run is often faster than the warm-up that estimated it.
		n = min(max(int(est*d.Seconds()*1.5), minFresh), maxFresh)
	} else {
		n = max(minFresh, 4*r.opts.Concurrency)
	}
	if s.dpop {
		return r.env.dpopFeed(ctx, n)
	}
	start := time.Now()
	tokens, err := mintParallel(ctx, r.env.issuer, s.alg, n)
	if err != nil {
		return nil, err
	}
	if took := time.Since(start); took > time.Second {
		fmt.Fprintf(r.opts.Progress, "bench: minted %d %s tokens for %s in %.1fs (not measured)\n", n, s.alg, s.name, took.Seconds())
	}
	return newFeed(fresh, tokens), nil
}

// progress prints one round of one scenario.
func (r *runner) progress(round int, s *scenario, fl, sc runStats) {
	ratio := 0.0
	if ft := fl.throughput(); ft > 0 {
		ratio = sc.throughput() / ft
	}
	fmt.Fprintf(r.opts.Progress, "bench: round %d/%d %-16s floor %8.0f/s  %8.0f/s  x%.2f  p99 %v",
		round, r.opts.Rounds, s.name, fl.throughput(), sc.throughput(), ratio, sc.percentile(0.99).Round(time.Microsecond))
	if sc.exhausted {
		fmt.Fprintf(r.opts.Progress, "  (tokens ran out after %.1fs)", sc.elapsed.Seconds())
	}
	if sc.errors > 0 {
		fmt.Fprintf(r.opts.Progress, "  %d unexpected answers, first: %s", sc.errors, sc.firstErr)
	}
	fmt.Fprintln(r.opts.Progress)
}
