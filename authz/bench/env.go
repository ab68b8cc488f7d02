package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/devissuer"
	"github.com/tokenwise/tokenwise/authz/server"
	"github.com/tokenwise/tokenwise/authz/uselimit/redisproc"
)

// audience is the aud of every bench token.
const audience = "bench-api"

// poolSize is how many valid tokens the pooled scenarios reuse.
const poolSize = 1000

// target is one gRPC server under load and the connections to it.
type target struct {
	name    string
	clients []authv3.AuthorizationClient
	conns   []*grpc.ClientConn
}

func (t *target) close() {
	for _, c := range t.conns {
		_ = c.Close()
	}
}

// env is everything the scenarios run against.
type env struct {
	opts    *Options
	issuer  *devissuer.Issuer
	jwks    *http.Server
	dir     string
	floor   *target
	memory  *target
	redis   *target
	nocache *target
	pool    []string
	stops   []func()
	skipped map[string]string
}

// newEnv starts the issuer, the floor, the tokenwise server(s) and Redis
// when sel needs it, and mints the token pool.
func newEnv(ctx context.Context, opts *Options, sel []*scenario) (e *env, err error) {
	e = &env{opts: opts, skipped: map[string]string{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "tokenwise-bench-"); err != nil {
		return nil, err
	}
	if err = writePolicy(filepath.Join(e.dir, "policy"), benchPolicy); err != nil {
		return nil, err
	}
	issURL, err := e.startIssuer()
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(opts.Progress, "bench: starting the floor and tokenwise servers")
	if e.floor, err = e.startFloor(); err != nil {
		return nil, err
	}
	if opts.Target != "" {
		return e, e.useTarget(ctx, sel)
	}
	if e.memory, err = e.startTokenwise(ctx, issURL, "memory", "memory", ""); err != nil {
		return nil, err
	}
	if needsNocache(sel) {
		if err = writePolicy(filepath.Join(e.dir, "nocache"), nocachePolicy); err != nil {
			return nil, err
		}
		if e.nocache, err = e.startTokenwise(ctx, issURL, "nocache", "memory", ""); err != nil {
			return nil, err
		}
	}
	if needsRedis(sel) {
		if err = e.startRedisTarget(ctx, issURL); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(opts.Progress, "bench: minting %d RS256 tokens for the pool\n", poolSize)
	e.pool, err = mintParallel(ctx, e.issuer, "RS256", poolSize)
	return e, err
}

// writePolicy writes one policy file into its own directory.
func writePolicy(dir, policy string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.rego"), []byte(policy), 0o600)
}

// useTarget points every scenario at opts.Target instead of tokenwise;
// scenarios that need tokenwise's Redis store are skipped.
func (e *env) useTarget(ctx context.Context, sel []*scenario) (err error) {
	fmt.Fprintln(e.opts.Progress, "bench: every scenario runs against the target", e.opts.Target, "instead of tokenwise")
	if e.memory, err = e.dial("target", e.opts.Target); err != nil {
		return err
	}
	e.nocache = e.memory
	for _, s := range sel {
		if s.redis {
			e.skipped[s.name] = "runs on tokenwise's Redis store; not with --target"
		}
	}
	fmt.Fprintf(e.opts.Progress, "bench: minting %d RS256 tokens for the pool\n", poolSize)
	e.pool, err = mintParallel(ctx, e.issuer, "RS256", poolSize)
	return err
}

func needsNocache(sel []*scenario) bool {
	for _, s := range sel {
		if s.nocache {
			return true
		}
	}
	return false
}

func needsRedis(sel []*scenario) bool {
	for _, s := range sel {
		if s.redis {
			return true
		}
	}
	return false
}

// runnable drops the scenarios whose target could not start.
func (e *env) runnable(sel []*scenario) []*scenario {
	var out []*scenario
	for _, s := range sel {
		if _, skip := e.skipped[s.name]; !skip {
			out = append(out, s)
		}
	}
	return out
}

func (e *env) close() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// targetFor is the server a scenario runs against.
func (e *env) targetFor(s *scenario) *target {
	switch {
	case s == floor:
		return e.floor
	case s.redis:
		return e.redis
	case s.nocache:
		return e.nocache
	}
	return e.memory
}

// startIssuer serves the issuer's JWKS on a loopback port and returns its URL.
func (e *env) startIssuer() (string, error) {
	addr := e.opts.IssuerAddress
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	url := "http://" + lis.Addr().String()
	if e.issuer, err = devissuer.New(url, audience, devissuer.WithAlgorithms("RS256", "ES256")); err != nil {
		lis.Close()
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /jwks.json", e.issuer.JWKS())
	e.jwks = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.jwks.Serve(lis) }()
	e.stops = append(e.stops, func() { _ = e.jwks.Close() })
	return url, nil
}

// noop is the floor: an ext_authz server that answers OK to everything.
type noop struct {
	authv3.UnimplementedAuthorizationServer
}

// okResponse is shared: gRPC only reads it to marshal it.
var okResponse = &authv3.CheckResponse{
	Status:       &status.Status{Code: 0},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

// Check answers OK.
func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

// startFloor runs the no-op server with tokenwise's own gRPC server options.
func (e *env) startFloor() (*target, error) {
	opts, err := server.GRPCServerOptions(config.Default().GRPC)
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(g, noop{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go serveLabelled(context.Background(), "floor", func(context.Context) { _ = g.Serve(lis) })
	e.stops = append(e.stops, g.Stop)
	return e.dial("floor", lis.Addr().String())
}

// startTokenwise runs a tokenwise server named name with the policy in the
// directory of that name (memory and redis share "policy") and the given
// use-limit store, and waits until its JWKS is loaded.
func (e *env) startTokenwise(ctx context.Context, issURL, name, store, redisAddr string) (*target, error) {
	cfg := config.Default()
	cfg.GRPC.Address, cfg.HTTP.Address = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Issuers = []config.Issuer{{
		Name: "bench", Issuer: issURL, JWKSURL: issURL + "/jwks.json",
		Audiences: []string{audience}, Algorithms: []string{"RS256", "ES256"},
	}}
	policyDir := "policy"
	if name == "nocache" {
		policyDir = "nocache"
	}
	cfg.Policy.Paths = []string{filepath.Join(e.dir, policyDir)}
	cfg.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	cfg.UseLimits.Store = store
	if redisAddr != "" {
		cfg.UseLimits.Redis.Address = redisAddr
	}
	cfg.Log.Level = "info"
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The decision log is encoded as in production (JSON, one line per
	// Check) but thrown away: the terminal is not what is measured.
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(ctx, cfg, server.Options{Logger: logger, DrainTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go serveLabelled(sctx, "tokenwise-"+name, func(ctx context.Context) { _ = srv.Serve(ctx); close(done) })
	e.stops = append(e.stops, func() { cancel(); <-done })
	if err := waitReady(ctx, srv); err != nil {
		return nil, err
	}
	return e.dial("tokenwise-"+name, srv.GRPCAddr())
}

// serveLabelled runs serve with the pprof label server=name, which every
// goroutine it starts inherits (gRPC's connection and stream goroutines), so
// a --cpuprofile can be split by server: go tool pprof -tagfocus server=…
func serveLabelled(ctx context.Context, name string, serve func(context.Context)) {
	pprof.Do(ctx, pprof.Labels("server", name), serve)
}

// waitReady waits for the server's JWKS to load.
func waitReady(ctx context.Context, srv *server.Server) error {
	deadline := time.Now().Add(15 * time.Second)
	for !srv.Ready() {
		if time.Now().After(deadline) {
			return errors.New("tokenwise did not become ready: the issuer's JWKS did not load")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// startRedisTarget runs the Redis-backed tokenwise server, on --redis or on
// a redis-server started here; without either, one-time-redis is skipped.
func (e *env) startRedisTarget(ctx context.Context, issURL string) error {
	addr := e.opts.RedisAddr
	if addr == "" {
		r, err := redisproc.Start(e.opts.RedisBinary, e.dir)
		if err != nil {
			e.skipped["one-time-redis"] = fmt.Sprintf("no Redis: pass --redis ADDR or install redis-server (%v)", err)
			fmt.Fprintln(e.opts.Progress, "bench: skipping one-time-redis:", e.skipped["one-time-redis"])
			return nil
		}
		e.stops = append(e.stops, r.Stop)
		addr = r.Addr()
		fmt.Fprintln(e.opts.Progress, "bench: started redis-server on", addr)
	}
	t, err := e.startTokenwise(ctx, issURL, "redis", "redis", addr)
	if err != nil {
		return fmt.Errorf("tokenwise with Redis at %s: %w", addr, err)
	}
	e.redis = t
	return nil
}

// dial opens the connections to addr, eagerly, so the first Check does not
// pay for the handshake.
func (e *env) dial(name, addr string) (*target, error) {
	t := &target{name: name}
	e.stops = append(e.stops, t.close)
	for range e.opts.Connections {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		conn.Connect()
		t.conns = append(t.conns, conn)
		t.clients = append(t.clients, authv3.NewAuthorizationClient(conn))
	}
	return t, nil
}

// mintParallel signs n tokens for alg on every core: RS256 signing costs
// milliseconds, forty times its verification.
func mintParallel(ctx context.Context, iss *devissuer.Issuer, alg string, n int) ([]string, error) {
	out := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				tok, err := iss.Mint(devissuer.Token{
					Subject: fmt.Sprintf("user-%d", i), Scopes: []string{"orders:read", "payments:write"},
					Lifetime: time.Hour, Alg: alg,
				})
				if err != nil {
					errs <- err
					return
				}
				out[i] = tok
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}
