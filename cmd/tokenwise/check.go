package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/server"
)

func newValidateCmd() *cobra.Command {
	var o overrides
	cmd := &cobra.Command{
		Use:   "validate --config FILE",
		Short: "Check the configuration and compile the policies",
		Long: `Check the configuration and compile the policies, as serve would at start,
without listening or fetching keys. A fault exits non-zero with one line that
names the file, the YAML path and what to change. Risky settings that work
are printed as warnings and do not fail the check.`,
		Example: `  tokenwise validate --config tokenwise.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return validate(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.register(cmd.Flags(), true)
	return cmd
}

// validate checks the configuration and compiles the policies.
func validate(ctx context.Context, o *overrides, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	engine, err := policy.New(ctx, cfg.Policy, policy.Options{Logger: quiet})
	if err != nil {
		return err
	}
	if err := engine.CheckQuery(); err != nil {
		return fmt.Errorf("config %s: %w", o.config, err)
	}
	// Loads the TLS certificate, key and client CA files, as serve would.
	if _, err := server.GRPCServerOptions(cfg.GRPC); err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "tokenwise: warning: %s: %s\n", o.config, w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d issuers, policy %v compiled, query %s)\n", o.config, len(cfg.Issuers), cfg.Policy.Paths, cfg.Policy.Query)
	return nil
}

func newCheckCmd() *cobra.Command {
	var o overrides
	var requestFile string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "check --config FILE --request REQ.json",
		Short: "Answer one CheckRequest (protojson) offline",
		Long: `Answer one Envoy CheckRequest, read from a protojson file, exactly as the
server would, and print the CheckResponse (protojson) on stdout.

The decision log line, with its reason, goes to stderr, as do the process
log (a JWKS that does not load is named with its cause) and a note of the
use limit an allowed decision carried. An allowed use is counted in the
configured use_limits store, as a real Check would count it (with store:
redis, in the shared Redis). --log-level debug also shows the policy's
print() output.`,
		Example: `  tokenwise check --config tokenwise.yaml --request req.json
  tokenwise check --config tokenwise.yaml --request req.json --log-level debug 2>decision.log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if requestFile == "" {
				return fmt.Errorf("--request REQ.json is required")
			}
			return check(cmd.Context(), &o, requestFile, wait, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.register(cmd.Flags(), true)
	cmd.Flags().StringVar(&requestFile, "request", "", "CheckRequest in protojson (as Envoy sends it)")
	cmd.Flags().DurationVar(&wait, "jwks-wait", 10*time.Second, "how long to wait for the issuers' JWKS")
	return cmd
}

// check answers one CheckRequest read from a protojson file, as the server
// would, and prints the CheckResponse.
func check(ctx context.Context, o *overrides, requestFile string, wait time.Duration, stdout, stderr io.Writer) error {
	req, err := readRequest(requestFile)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	logWarnings(logger, cfg)
	if req.GetAttributes().GetRequest().GetHttp() == nil {
		logger.Warn("check request has no attributes.request.http: the policy cannot be asked and the answer is a 500 deny", "request", requestFile)
	}
	s, err := server.New(ctx, cfg, server.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer s.Close()
	waitReady(ctx, s, wait, cfg, stderr)
	resp, limits := s.Authorizer().Explain(ctx, req)
	out, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(out))
	if resp.GetOkResponse() != nil {
		noteLimits(limits, stderr)
	}
	return nil
}

// noteLimits tells what limits the allowing decision carried: the printed
// answer is an allow, but the same token or caller may not be allowed again.
func noteLimits(l server.Limits, w io.Writer) {
	switch {
	case l.MaxUses == 1:
		fmt.Fprintln(w, "tokenwise: use limit: the decision made this token one-time (one_time_use); a second use is refused with 401")
	case l.MaxUses > 1:
		fmt.Fprintf(w, "tokenwise: use limit: the decision allows this token %d uses (max_uses); this check counted one\n", l.MaxUses)
	}
	if l.RateLimit != "" {
		fmt.Fprintf(w, "tokenwise: rate limit %q: %d requests left now; past it the answer is 429\n", l.RateLimit, l.RateRemaining)
	}
}

func readRequest(path string) (*authv3.CheckRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--request: %w", err)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("request %s: %v", path, err)
	}
	return req, nil
}

// waitReady waits until every issuer's JWKS has loaded, or gives up after d
// and lets verification report what is missing. The verifier has already
// logged each failed fetch with its cause.
func waitReady(ctx context.Context, s *server.Server, d time.Duration, cfg *config.Config, stderr io.Writer) {
	deadline := time.Now().Add(d)
	for !s.Ready() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if !s.Ready() {
		fmt.Fprintf(stderr, "tokenwise: warning: not every issuer's JWKS loaded within --jwks-wait %s (%s); tokens of those issuers will be refused with 503; the \"jwks fetch failed\" log line above names the cause\n",
			d, issuerNames(cfg))
	}
}

func issuerNames(cfg *config.Config) string {
	names := ""
	for i, is := range cfg.Issuers {
		if i > 0 {
			names += ", "
		}
		names += is.Name + " " + jwksSource(is)
	}
	return names
}

func jwksSource(is config.Issuer) string {
	if is.JWKSURL != "" {
		return is.JWKSURL
	}
	return is.DiscoveryEndpoint()
}
