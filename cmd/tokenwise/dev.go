package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/devissuer"
	"github.com/tokenwise/tokenwise/authz/server"
	"github.com/tokenwise/tokenwise/policies"
)

// The development issuer's iss and aud, and where its routes live on the
// operations listener.
const (
	devIssuerPath = "/dev"
	devAudience   = "tokenwise-dev"
)

func newDevCmd() *cobra.Command {
	var o overrides
	cmd := &cobra.Command{
		Use:   "dev [--config FILE]",
		Short: "Run the quick start: a development issuer and the bundled policies",
		Long: `Run everything serve runs, plus an in-process development issuer (ephemeral
signing keys; its JWKS and OpenID discovery document on the operations
listener; tokens minted on request, only for loopback callers) and the
bundled policies. Prints a ready token and the commands to try it once the
server is ready. Logs are text unless log.format says json.

--config FILE layers your configuration over the development defaults: an
admin token, your own policies, more issuers beside the development one.`,
		Example: `  tokenwise dev
  tokenwise dev --config tokenwise.yaml --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dev(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.register(cmd.Flags(), true)
	return cmd
}

// dev runs the quick start: serve, plus an in-process issuer and the bundled policies.
func dev(ctx context.Context, o *overrides, stdout, stderr io.Writer) error {
	cfg := config.Default()
	if err := o.apply(cfg); err != nil {
		return err
	}
	if err := requireLoopback(cfg.HTTP.Address); err != nil {
		return err
	}
	// Bind the operations listener first: the issuer URL names its real
	// address (port 0 works), and the first JWKS fetch finds it answering.
	httpLis, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	cfg.HTTP.Address = httpLis.Addr().String()
	base := "http://" + cfg.HTTP.Address + devIssuerPath
	iss, err := devissuer.New(base, devAudience)
	if err != nil {
		httpLis.Close()
		return err
	}
	cfg.Issuers = []config.Issuer{{
		Name: "dev", Issuer: base, JWKSURL: base + "/jwks.json", Audiences: []string{devAudience}, Algorithms: []string{"ES256"},
	}}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	cfg.Policy.Paths = []string{"."}
	opts := server.Options{
		Logger:       newLogger(stderr, cfg.Log.Level, "json"),
		PolicyFS:     policyFS(),
		HTTPListener: httpLis,
		Handlers: map[string]http.Handler{
			"GET " + devIssuerPath + "/jwks.json": iss.JWKS(),
			"GET " + devIssuerPath + "/token":     iss.MintHandler(),
		},
	}
	if opts.PolicyFS == nil {
		cfg.Policy.Paths = []string{"policies/"}
	}
	return runServer(ctx, cfg, opts, func(s *server.Server) { printQuickStart(stdout, iss, s) })
}

// policyFS is the embedded bundled policies, unless ./policies exists: then
// the files on disk are used (nil), so edits are picked up while developing.
func policyFS() fs.FS {
	if st, err := os.Stat("policies"); err == nil && st.IsDir() {
		return nil
	}
	return policies.FS
}

// requireLoopback keeps the development issuer off the network: anyone who
// can reach it can mint tokens.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("dev: --http-address %s is not loopback; the development issuer must not be reachable from the network", addr)
	}
	return nil
}

func printQuickStart(w io.Writer, iss *devissuer.Issuer, s *server.Server) {
	token, err := iss.Mint(devissuer.Token{Subject: "alice", Scopes: []string{"orders:read"}})
	if err != nil {
		fmt.Fprintln(w, "mint failed:", err)
		return
	}
	grpcurl := "go run github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4 -plaintext"
	request := func(auth string) string {
		headers := `"x-request-id":"quick-start"`
		if auth != "" {
			headers += `,"authorization":"Bearer ` + auth + `"`
		}
		return `'{"attributes":{"request":{"http":{"method":"GET","path":"/orders/42","host":"shop.local","headers":{` + headers + `}}}}}'`
	}
	lines := []string{
		"tokenwise dev is running (development issuer, bundled policies; keys vanish when it stops).",
		"",
		"gRPC (ext_authz v3):  " + s.GRPCAddr(),
		"operations:           http://" + s.HTTPAddr() + "  (/healthz /readyz /metrics)",
		"",
		"A token for alice with scope orders:read, valid for an hour:",
		"",
		token,
		"",
		"Ask tokenwise as Envoy would (allowed, with x-user-id: alice):",
		"",
		"  " + grpcurl + " -d " + request(token) + " " + s.GRPCAddr() + " envoy.service.auth.v3.Authorization/Check",
		"",
		"Without the token (denied, 401 with a Bearer challenge):",
		"",
		"  " + grpcurl + " -d " + request("") + " " + s.GRPCAddr() + " envoy.service.auth.v3.Authorization/Check",
		"",
		"More tokens: curl 'http://" + s.HTTPAddr() + devIssuerPath + "/token?sub=bob&scope=orders:read+orders:write&one_time=true&ttl=10m'",
		"",
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}
