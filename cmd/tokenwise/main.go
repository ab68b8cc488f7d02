// Command tokenwise is the Envoy external-authorization service: see
// `tokenwise help` and README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokenwise/tokenwise/authz/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `tokenwise: an Envoy ext_authz service for bearer tokens

Usage:
  tokenwise serve --config FILE       run the service
  tokenwise dev                       run the quick start (dev issuer, bundled policies)
  tokenwise validate --config FILE    check the configuration and compile the policies
  tokenwise check --config FILE --request REQ.json
                                      answer one CheckRequest (protojson) offline
  tokenwise bench [--scenarios LIST] [--json]
                                      measure Check against a no-op ext_authz floor
  tokenwise admin revoke-token|revoke-subject|uses|list|unrevoke ...
                                      revoke tokens on a running server (tokenwise admin help)
  tokenwise dpop-proof --key FILE --url URL [--method GET] [--token T]
                                      print a DPoP proof for one request
  tokenwise version                   print the version

Flags for serve and dev override the file: --grpc-address, --http-address, --log-level.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process's exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "dev":
		err = dev(ctx, args[1:], stdout, stderr)
	case "validate":
		err = validate(ctx, args[1:], stdout)
	case "check":
		err = check(ctx, args[1:], stdout)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	case "admin":
		err = adminCmd(ctx, args[1:], stdout)
	case "dpop-proof":
		err = dpopProof(args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "tokenwise", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("unknown command %q (try tokenwise help)", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "tokenwise:", err)
		return 1
	}
	return 0
}

// overrides are the flags that take precedence over the configuration file.
type overrides struct {
	config      string
	grpcAddress string
	httpAddress string
	logLevel    string
}

func (o *overrides) register(fs *flag.FlagSet, withConfig bool) {
	if withConfig {
		fs.StringVar(&o.config, "config", "", "configuration file (YAML)")
	}
	fs.StringVar(&o.grpcAddress, "grpc-address", "", "gRPC listen address (overrides grpc.address)")
	fs.StringVar(&o.httpAddress, "http-address", "", "operations listen address (overrides http.address)")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
}

// apply sets the flags that were given on cfg and validates the result.
func (o *overrides) apply(cfg *config.Config) error {
	if o.grpcAddress != "" {
		cfg.GRPC.Address = o.grpcAddress
	}
	if o.httpAddress != "" {
		cfg.HTTP.Address = o.httpAddress
	}
	if o.logLevel != "" {
		cfg.Log.Level = o.logLevel
	}
	return cfg.Validate()
}

func newFlags(name string, o *overrides, withConfig bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if o != nil {
		o.register(fs, withConfig)
	}
	return fs
}

// parse parses args and reports a bad flag in one line.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// loadConfig reads --config, which is required.
func loadConfig(o *overrides) (*config.Config, error) {
	if o.config == "" {
		return nil, errors.New("--config FILE is required")
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return nil, err
	}
	if err := o.apply(cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", o.config, err)
	}
	return cfg, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
