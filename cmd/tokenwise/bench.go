package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenwise/tokenwise/authz/bench"
)

const benchLong = `Measure tokenwise's Check against a no-op ext_authz server (the floor) in
one process: an in-process issuer, tokenwise servers and the floor, driven
over loopback gRPC. Runs are interleaved floor, scenario, floor, ... and each
scenario's throughput is reported as the median ratio to the floor.

Progress goes to stderr, the table (or JSON) to stdout.

Scenarios:
`

// newBenchCmd is `tokenwise bench`.
func newBenchCmd() *cobra.Command {
	var opts bench.Options
	var scenarios, profile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "bench [--scenarios LIST] [--json]",
		Short:   "Measure Checks/s, latency and allocations against a no-op ext_authz floor",
		Long:    benchLong + bench.ScenarioHelp(),
		Example: "  tokenwise bench --scenarios reuse,anonymous --duration 2s --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Concurrency <= 0 || opts.Connections <= 0 || opts.Rounds <= 0 || opts.Duration <= 0 || opts.Rate < 0 {
				return errors.New("bench: --concurrency, --connections, --rounds and --duration must be positive, --rate not negative")
			}
			if scenarios != "" {
				opts.Scenarios = strings.Split(scenarios, ",")
			}
			opts.Progress = cmd.ErrOrStderr()
			if profile != "" {
				stopProfile, err := startProfile(profile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			rep, err := bench.Run(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			if asJSON {
				return rep.WriteJSON(cmd.OutOrStdout())
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios (default: all)")
	fs.IntVar(&opts.Concurrency, "concurrency", 64, "Checks in flight")
	fs.IntVar(&opts.Connections, "connections", 2, "HTTP/2 connections per server (2, like Envoy)")
	fs.DurationVar(&opts.Duration, "duration", 3e9, "measured length of each run")
	fs.IntVar(&opts.Rounds, "rounds", 3, "floor/scenario pairs per scenario")
	fs.Float64Var(&opts.Rate, "rate", 0, "open loop at this many Checks/s for every run instead of closed loop")
	fs.StringVar(&opts.RedisAddr, "redis", "", "Redis for one-time-redis and rate-limit-redis (default: start redis-server; the cluster and wait scenarios always start their own)")
	fs.StringVar(&opts.Target, "target", "", "measure another ext_authz gRPC server (host:port) in tokenwise's place, e.g. OPA-Envoy with an equivalent policy; scenarios on Redis, HTTP mode and DPoP are skipped")
	fs.StringVar(&opts.IssuerAddress, "issuer-address", "", "where the bench issuer serves /jwks.json (default: a free loopback port), so a --target can fetch its keys")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	return cmd
}

// startProfile writes a CPU profile to path until the returned func is called.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
