package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/server"
)

// validate checks the configuration and compiles the policies.
func validate(ctx context.Context, args []string, stdout io.Writer) error {
	var o overrides
	if err := parse(newFlags("validate", &o, true), args); err != nil {
		return err
	}
	cfg, err := loadConfig(&o)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	if _, err := policy.New(ctx, cfg.Policy, policy.Options{Logger: quiet}); err != nil {
		return err
	}
	// Loads the TLS certificate, key and client CA files, as serve would.
	if _, err := server.GRPCServerOptions(cfg.GRPC); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d issuers, policy %v compiled, query %s)\n", o.config, len(cfg.Issuers), cfg.Policy.Paths, cfg.Policy.Query)
	return nil
}

// check answers one CheckRequest read from a protojson file, as the server
// would, and prints the CheckResponse.
func check(ctx context.Context, args []string, stdout io.Writer) error {
	var o overrides
	var requestFile string
	var wait time.Duration
	fs := newFlags("check", &o, true)
	fs.StringVar(&requestFile, "request", "", "CheckRequest in protojson")
	fs.DurationVar(&wait, "jwks-wait", 10*time.Second, "how long to wait for the issuers' JWKS")
	if err := parse(fs, args); err != nil {
		return err
	}
	if requestFile == "" {
		return fmt.Errorf("--request REQ.json is required")
	}
	req, err := readRequest(requestFile)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(&o)
	if err != nil {
		return err
	}
	s, err := server.New(ctx, cfg, server.Options{Logger: newLogger(os.Stderr, "error")})
	if err != nil {
		return err
	}
	defer s.Close()
	waitReady(ctx, s, wait)
	resp, err := s.Authorizer().Check(ctx, req)
	if err != nil {
		return err
	}
	out, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(out))
	return nil
}

func readRequest(path string) (*authv3.CheckRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("request %s: %v", path, err)
	}
	return req, nil
}

// waitReady waits until every issuer's JWKS has loaded, or gives up after d
// and lets verification report what is missing.
func waitReady(ctx context.Context, s *server.Server, d time.Duration) {
	deadline := time.Now().Add(d)
	for !s.Ready() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if !s.Ready() {
		fmt.Fprintln(os.Stderr, "tokenwise: warning: not every issuer's JWKS loaded; tokens of those issuers will be refused")
	}
}
