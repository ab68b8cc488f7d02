package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/tokenwise/tokenwise/authz/bench"
)

const benchUsage = `Usage: tokenwise bench [flags]

Measures tokenwise's Check against a no-op ext_authz server (the floor) in
one process: an in-process issuer, tokenwise servers and the floor, driven
over loopback gRPC. Runs are interleaved floor, scenario, floor, ... and each
scenario's throughput is reported as the median ratio to the floor.

Flags:
  --scenarios LIST   comma-separated scenarios (default: all)
  --concurrency N    Checks in flight (default 64)
  --connections N    HTTP/2 connections per server (default 2, like Envoy)
  --duration D       measured length of each run (default 3s)
  --rounds N         floor/scenario pairs per scenario (default 3)
  --rate R           open loop at R Checks/s for every run instead of closed loop
  --redis ADDR       Redis for one-time-redis (default: start redis-server)
  --target ADDR      measure another ext_authz gRPC server in tokenwise's place
                     (a side-by-side, e.g. OPA-Envoy with an equivalent policy)
  --issuer-address ADDR  where the bench issuer serves /jwks.json (default: a free
                     loopback port), so a --target can fetch its keys
  --json             print the report as JSON
  --cpuprofile FILE  write a CPU profile of the whole run

Scenarios:
`

// benchCmd runs `tokenwise bench`: progress on stderr, the table (or JSON) on stdout.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, asJSON, profile, err := parseBench(args, stdout)
	if err != nil {
		return err
	}
	opts.Progress = stderr
	if profile != "" {
		stopProfile, err := startProfile(profile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}

// parseBench reads the flags; --help prints the usage and returns flag.ErrHelp.
func parseBench(args []string, stdout io.Writer) (opts bench.Options, asJSON bool, profile string, err error) {
	fs := newFlags("bench", nil, false)
	var scenarios string
	fs.StringVar(&scenarios, "scenarios", "", "")
	fs.IntVar(&opts.Concurrency, "concurrency", 64, "")
	fs.IntVar(&opts.Connections, "connections", 2, "")
	fs.DurationVar(&opts.Duration, "duration", 3e9, "")
	fs.IntVar(&opts.Rounds, "rounds", 3, "")
	fs.Float64Var(&opts.Rate, "rate", 0, "")
	fs.StringVar(&opts.RedisAddr, "redis", "", "")
	fs.StringVar(&opts.Target, "target", "", "")
	fs.StringVar(&opts.IssuerAddress, "issuer-address", "", "")
	fs.BoolVar(&asJSON, "json", false, "")
	fs.StringVar(&profile, "cpuprofile", "", "")
	if err = parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, benchUsage+bench.ScenarioHelp())
		}
		return opts, false, "", err
	}
	if opts.Concurrency <= 0 || opts.Connections <= 0 || opts.Rounds <= 0 || opts.Duration <= 0 || opts.Rate < 0 {
		return opts, false, "", errors.New("bench: --concurrency, --connections, --rounds and --duration must be positive, --rate not negative")
	}
	if scenarios != "" {
		opts.Scenarios = strings.Split(scenarios, ",")
	}
	return opts, asJSON, profile, nil
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
