package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/devissuer"
	"github.com/tokenwise/tokenwise/authz/server"
	"github.com/tokenwise/tokenwise/policies"
)

// The development issuer's name and aud, and where its routes live on the
// operations listener.
const (
	devIssuerName = "dev"
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
listener under /dev; tokens minted on request, only for loopback callers)
and the bundled policies (./policies when it exists, so edits are picked up).
Once the server is ready it prints a token and the commands to try it, each
with the answer the loaded policy actually gives. Logs are text unless
log.format says json.

--config FILE layers your configuration over the development defaults: an
admin token, your own policies (policy.paths), more issuers beside the
development one. The development issuer is named "dev".

Mint more tokens with GET /dev/token on the operations listener:
  sub=NAME  scope="a b"  one_time=true  ttl=10m  aud=AUDIENCE  claims={"tenant":"acme"}
  jkt=THUMBPRINT (bound to a DPoP key: tokenwise dpop-proof --key FILE --jkt)
  x5t=THUMBPRINT (bound to a client certificate)`,
		Example: `  tokenwise dev
  tokenwise dev --config tokenwise.yaml --log-level debug
  curl -G http://127.0.0.1:9192/dev/token --data-urlencode sub=bob --data-urlencode 'claims={"tenant":"acme"}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dev(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.register(cmd.Flags(), true)
	return cmd
}

// devBase is the configuration dev starts from, before the user's file.
func devBase() *config.Config {
	cfg := config.Default()
	cfg.Log.Format = "text"
	cfg.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	return cfg
}

// devConfig is the development defaults with the user's --config file over them.
func devConfig(o *overrides) (*config.Config, error) {
	cfg := devBase()
	if o.config != "" {
		var err error
		if cfg, err = config.LoadOver(o.config, cfg); err != nil {
			return nil, err
		}
	}
	if err := o.apply(cfg); err != nil {
		return nil, err
	}
	for _, is := range cfg.Issuers {
		if is.Name == devIssuerName {
			return nil, fmt.Errorf("config %s: issuer name %q is the development issuer's; give yours another name", o.config, devIssuerName)
		}
	}
	return cfg, requireLoopback(cfg.HTTP.Address)
}

// dev runs the quick start: serve, plus an in-process issuer and the bundled policies.
func dev(ctx context.Context, o *overrides, stdout, stderr io.Writer) error {
	cfg, err := devConfig(o)
	if err != nil {
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
	cfg.Issuers = append([]config.Issuer{{
		Name: devIssuerName, Issuer: base, JWKSURL: base + "/jwks.json", Audiences: []string{devAudience}, Algorithms: []string{"ES256"},
	}}, cfg.Issuers...)
	opts := server.Options{
		Logger:       newLogger(stderr, cfg.Log.Level, cfg.Log.Format),
		HTTPListener: httpLis,
		Handlers: map[string]http.Handler{
			"GET " + devIssuerPath + "/jwks.json":         iss.JWKS(),
			"GET " + devIssuerPath + config.DiscoveryPath: iss.Discovery(base + "/jwks.json"),
			"GET " + devIssuerPath + "/token":             iss.MintHandler(),
		},
	}
	policyDesc := "policies " + strings.Join(cfg.Policy.Paths, ", ")
	if !cfg.Sets("policy", "paths") {
		cfg.Policy.Paths, policyDesc = []string{"policies/"}, "the policies in ./policies"
		if opts.PolicyFS = policyFS(); opts.PolicyFS != nil {
			cfg.Policy.Paths, policyDesc = []string{"."}, "the bundled policies"
		}
	}
	if err := cfg.Validate(); err != nil {
		httpLis.Close()
		return err
	}
	logWarnings(opts.Logger, cfg)
	tmp, err := os.MkdirTemp("", "tokenwise-dev-")
	if err != nil {
		httpLis.Close()
		return err
	}
	defer os.RemoveAll(tmp)
	return runServer(ctx, cfg, opts, func(s *server.Server) {
		go func() {
			// The dev issuer's keys load at once; another issuer's may not,
			// so the banner waits a bounded time and then says so.
			if waitUntilReady(ctx, s, 10*time.Second) {
				printQuickStart(ctx, stdout, iss, s, tmp, policyDesc)
			}
		}()
	})
}

// waitUntilReady polls until every issuer's keys loaded, ctx ends or d passes.
func waitUntilReady(ctx context.Context, s *server.Server, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !s.Ready() && ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err() == nil
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

// example is one request the quick start suggests, with the answer the
// loaded policy gave it.
type example struct {
	title string
	file  string
	req   *authv3.CheckRequest
	// probe is req with a twin token (same claims, another jti), asked
	// before printing: a use limit the policy sets is not spent on req's token.
	probe *authv3.CheckRequest
	got   string
}

// printQuickStart prints the banner: a token, and grpcurl commands whose
// request files it writes to dir. Each promise is what the running server
// answered that very request (with a twin token, so no use is spent), so
// it holds whatever policy is loaded.
func printQuickStart(ctx context.Context, w io.Writer, iss *devissuer.Issuer, s *server.Server, dir, policyDesc string) {
	claims := devissuer.Token{Subject: "alice", Scopes: []string{"orders:read"}}
	token, err1 := iss.Mint(claims)
	twin, err2 := iss.Mint(claims)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(w, "tokenwise dev: minting the quick-start token failed")
		return
	}
	examples := []*example{
		{title: "with alice's token", file: "with-token.json", req: devRequest(token), probe: devRequest(twin)},
		{title: "without a token", file: "without-token.json", req: devRequest(""), probe: devRequest("")},
	}
	for _, ex := range examples {
		probe := ex.probe
		probe.GetAttributes().GetRequest().GetHttp().GetHeaders()["x-request-id"] = "dev-banner-check"
		resp, err := s.Authorizer().Check(ctx, probe)
		ex.got = describeAnswer(resp, err)
		if err := writeRequest(filepath.Join(dir, ex.file), ex.req); err != nil {
			fmt.Fprintln(w, "tokenwise dev:", err)
			return
		}
	}
	grpcurl := "grpcurl -plaintext -d @ " + s.GRPCAddr() + " envoy.service.auth.v3.Authorization/Check < "
	lines := []string{
		"tokenwise dev is ready (development issuer, " + policyDesc + "; keys vanish when it stops).",
	}
	if !s.Ready() {
		lines = append(lines, "Not every issuer's keys have loaded yet: their tokens get 503 until they do (see the jwks log lines).")
	}
	lines = append(lines,
		"",
		"gRPC (ext_authz v3):  "+s.GRPCAddr(),
		"operations:           http://"+s.HTTPAddr()+"  (/healthz /readyz /metrics)",
		"issuer:               http://"+s.HTTPAddr()+devIssuerPath+"  (discovery: "+devIssuerPath+config.DiscoveryPath+")",
		"",
		"A token for alice with scope orders:read, valid for an hour:",
		"",
		token,
		"",
		"Ask tokenwise as Envoy would, GET /orders/42 (grpcurl: go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4):",
		"",
	)
	for _, ex := range examples {
		lines = append(lines, "  "+ex.title+": "+ex.got, "    "+grpcurl+filepath.Join(dir, ex.file), "")
	}
	lines = append(lines,
		"More tokens: curl 'http://"+s.HTTPAddr()+devIssuerPath+"/token?sub=bob&scope=orders:read+orders:write&one_time=true&ttl=10m'",
		`  (also aud=AUDIENCE and claims={"tenant":"acme"}, URL-encoded: curl -G URL --data-urlencode 'claims={...}')`,
		"",
	)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// devRequest is GET /orders/42 as Envoy sends it, with token when given.
func devRequest(token string) *authv3.CheckRequest {
	headers := map[string]string{":method": "GET", ":path": "/orders/42", ":authority": "shop.local", "x-request-id": "quick-start"}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/orders/42", Host: "shop.local", Headers: headers},
	}}}
}

func writeRequest(path string, req *authv3.CheckRequest) error {
	b, err := protojson.Marshal(req)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// describeAnswer says in a few words what a CheckResponse means.
func describeAnswer(resp *authv3.CheckResponse, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		var set []string
		for _, h := range resp.GetOkResponse().GetHeaders() {
			set = append(set, h.GetHeader().GetKey()+": "+h.GetHeader().GetValue())
		}
		if len(set) == 0 {
			return "allowed"
		}
		return "allowed, the upstream gets " + strings.Join(set, ", ")
	}
	answer := fmt.Sprintf("denied %d", resp.GetDeniedResponse().GetStatus().GetCode())
	if msg := resp.GetStatus().GetMessage(); msg != "" {
		answer += ": " + msg
	}
	return answer
}
