// Package bench is the engine behind `tokenwise bench`: it measures
// tokenwise's Check against the physical floor on the same machine, a gRPC
// ext_authz server that answers OK to everything.
//
// Everything runs in one process: a development issuer serving its JWKS on
// loopback, tokenwise servers built from a generated configuration and
// policy, the no-op floor server, and a load generator that drives them with
// the generated envoy.service.auth.v3 client over a few long-lived HTTP/2
// connections, as Envoy does. Runs are interleaved (floor, scenario, floor,
// scenario, …) and each scenario's throughput is reported as the median of
// its ratios to the floor run just before it: on shared machines two
// identical servers measured one after the other can differ by a quarter,
// while interleaved medians agree within a few percent.
package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Options say what to run and how hard.
type Options struct {
	// Scenarios to run, by name (nil: every scenario).
	Scenarios []string
	// Concurrency is the number of Checks in flight (closed loop) or the
	// number of workers (open loop). Default 64.
	Concurrency int
	// Connections is the number of HTTP/2 connections to each server. Default 2.
	Connections int
	// Duration is the measured length of one run. Default 3s.
	Duration time.Duration
	// Rounds is how many floor/scenario pairs each scenario gets. Default 3.
	Rounds int
	// Rate, when positive, makes every run open-loop at this many Checks/s
	// instead of closed-loop at Concurrency.
	Rate float64
	// RedisAddr is the Redis for one-time-redis; empty: start redis-server
	// (RedisBinary) on a free loopback port, or skip the scenario when it
	// cannot start.
	RedisAddr string
	// RedisBinary is the redis-server executable (default "redis-server").
	RedisBinary string
	// Progress receives one line per run while the benchmark runs (nil: none).
	Progress io.Writer
	// Target, when set, is another ext_authz gRPC server (host:port) that
	// takes tokenwise's place in every scenario, for a side-by-side with,
	// say, OPA-Envoy running an equivalent policy. Its ratios to the floor
	// are measured exactly as tokenwise's; scenarios on Redis are skipped.
	Target string
	// IssuerAddress is where the bench's issuer serves its JWKS
	// (/jwks.json), so a Target can fetch it (default: a free loopback port).
	IssuerAddress string
}

func (o *Options) applyDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Connections <= 0 {
		o.Connections = 2
	}
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.RedisBinary == "" {
		o.RedisBinary = "redis-server"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// selected resolves opts.Scenarios to scenarios in canonical order;
// reuse-half needs reuse's throughput, so it brings reuse along.
func (o *Options) selected() ([]*scenario, error) {
	want := map[string]bool{}
	for _, name := range o.Scenarios {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if scenarioByName(name) == nil {
			return nil, fmt.Errorf("unknown scenario %q (want %s)", name, strings.Join(ScenarioNames(), ", "))
		}
		want[name] = true
	}
	if want["reuse-half"] {
		want["reuse"] = true
	}
	var out []*scenario
	for _, s := range scenarios {
		if len(want) == 0 || want[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Run starts everything the selected scenarios need, runs the interleaved
// rounds and returns the report. ctx ends the run early with its error.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.applyDefaults()
	sel, err := opts.selected()
	if err != nil {
		return nil, err
	}
	env, err := newEnv(ctx, &opts, sel)
	if err != nil {
		return nil, err
	}
	defer env.close()
	r := &runner{opts: &opts, env: env, scenarios: env.runnable(sel)}
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	rep := r.report()
	rep.Skipped = env.skipped
	return rep, nil
}

// ScenarioNames lists every scenario in the order they run.
func ScenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// ScenarioHelp describes each scenario in one line, for --help.
func ScenarioHelp() string {
	var b strings.Builder
	width := 0
	for _, s := range scenarios {
		width = max(width, len(s.name))
	}
	for _, s := range scenarios {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, s.name, s.desc)
	}
	return b.String()
}

// median is the middle of xs (the mean of the two middles for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
