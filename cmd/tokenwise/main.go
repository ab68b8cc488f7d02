// Command tokenwise is the Envoy external-authorization service: see
// `tokenwise --help` and README.md.
//
// The command line is built on spf13/cobra, as OPA's is: every command has
// --help, and `tokenwise completion bash|zsh|fish|powershell` comes with it.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokenwise/tokenwise/authz/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process's exit status: 0, 1 on
// any fault (one line on stderr), 2 when no command was given.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	if len(args) == 0 {
		root.SetOut(stderr)
		_ = root.Usage()
		return 2
	}
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "tokenwise:", oneLine(err))
		return 1
	}
	return 0
}

// oneLine keeps a fault to the one line the README promises.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// newRootCmd builds the whole command tree, writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tokenwise",
		Short: "An Envoy ext_authz service for bearer tokens",
		Long: `tokenwise answers Envoy's ext_authz Check for every request: it finds the
bearer token, verifies it against the issuer's keys, asks a Rego policy and
enforces one-time and N-use limits, then allows (with headers for the
upstream) or denies with a proper error for the client.

Start with "tokenwise dev": no setup, a development issuer, the bundled
policies and the commands to try printed on the terminal.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath())
	})
	root.AddCommand(
		newServeCmd(), newDevCmd(), newValidateCmd(), newCheckCmd(),
		newAdminCmd(), newBenchCmd(), newVersionCmd(), newDPoPProofCmd(),
	)
	return root
}

// overrides are the flags that take precedence over the configuration file.
type overrides struct {
	config      string
	grpcAddress string
	httpAddress string
	logLevel    string
	logFormat   string
}

func (o *overrides) register(fs *pflag.FlagSet, withConfig bool) {
	if withConfig {
		fs.StringVar(&o.config, "config", "", "configuration file (YAML)")
	}
	fs.StringVar(&o.grpcAddress, "grpc-address", "", "gRPC listen address (overrides grpc.address)")
	fs.StringVar(&o.httpAddress, "http-address", "", "operations listen address (overrides http.address)")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.StringVar(&o.logFormat, "log-format", "", "text or json (overrides log.format)")
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
	if o.logFormat != "" {
		cfg.Log.Format = o.logFormat
	}
	return cfg.Validate()
}

// loadConfig reads --config, which is required, applies the flags and
// checks what only a whole file can show (issuers present).
func loadConfig(o *overrides) (*config.Config, error) {
	if o.config == "" {
		return nil, fmt.Errorf("--config FILE is required")
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return nil, err
	}
	if err := o.apply(cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", o.config, err)
	}
	if err := cfg.RequireIssuers(); err != nil {
		return nil, fmt.Errorf("config %s: %w", o.config, err)
	}
	return cfg, nil
}

// newLogger logs at level, as JSON unless format is "text".
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// logWarnings logs the risky settings serve and dev start with.
func logWarnings(logger *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		logger.Warn("risky configuration", "warning", w)
	}
}
