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
	"runtime/pprof"
	"strings"
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
	// http is set for an HTTP authorization mode target.
	http *httpTarget
}

func (t *target) close() {
	for _, c := range t.conns {
		_ = c.Close()
	}
}

// env is everything the scenarios run against.
type env struct {
	opts   *Options
	issuer *devissuer.Issuer
	jwks   *http.Server
	dir    string
	floor  *target
	memory *target
	// nocache is the server whose policy also reads x-request-id.
	nocache *target
	redis   map[string]*target // by scenario redisKind
	pool    []string
	dpop    *dpopClient
	// httpFloor and httpAuthz are the HTTP scenarios' targets (nil unless selected).
	httpFloor, httpAuthz *target
	stops                []func()
	skipped              map[string]string
}

// newEnv starts the issuer, the floor, the tokenwise server(s) and Redis
// when sel needs it, and mints the token pool.
func newEnv(ctx context.Context, opts *Options, sel []*scenario) (e *env, err error) {
	e = &env{opts: opts, skipped: map[string]string{}, redis: map[string]*target{}}
	started := e // e is nil once an error is returned
	defer func() {
		if err != nil {
			started.close()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "tokenwise-bench-"); err != nil {
		return nil, err
	}
	if err = e.writePolicies(); err != nil {
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
	if e.memory, err = e.startTokenwise(ctx, issURL, "memory", "memory", nil); err != nil {
		return nil, err
	}
	if needsNocache(sel) {
		if e.nocache, err = e.startTokenwise(ctx, issURL, "nocache", "memory", nil); err != nil {
			return nil, err
		}
	}
	if needsHTTP(sel) && e.httpFloor == nil {
		if e.httpFloor, err = e.startHTTPFloor(); err != nil {
			return nil, err
		}
	}
	for _, s := range sel {
		if !s.redis || e.redis[s.redisKind] != nil {
			continue
		}
		if err = e.startRedisTarget(ctx, issURL, s); err != nil {
			return nil, err
		}
	}
	if needsDPoP(sel) {
		if err = e.startDPoP(ctx); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(opts.Progress, "bench: minting %d RS256 tokens for the pool\n", poolSize)
	e.pool, err = mintParallel(ctx, e.issuer, "RS256", poolSize)
	return e, err
}

// writePolicies writes each server's policy into its own directory.
func (e *env) writePolicies() error {
	for dir, policy := range map[string]string{"policy": benchPolicy, "nocache": nocachePolicy, "ratelimit": rateLimitPolicy} {
		if err := writePolicy(filepath.Join(e.dir, dir), policy); err != nil {
			return err
		}
	}
	return nil
}

// policyDir is the policy directory of the tokenwise server named name.
func policyDir(name string) string {
	switch name {
	case "nocache":
		return "nocache"
	case "redis-" + redisRateLimit:
		return "ratelimit"
	}
	return "policy"
}

// writePolicy writes one policy file into its own directory.
func writePolicy(dir, policy string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.rego"), []byte(policy), 0o600)
}

// useTarget points every scenario at opts.Target instead of tokenwise.
// Scenarios that exercise what only tokenwise has (its Redis stores, its
// HTTP authorization mode, DPoP) are skipped.
func (e *env) useTarget(ctx context.Context, sel []*scenario) (err error) {
	fmt.Fprintln(e.opts.Progress, "bench: every scenario runs against the target", e.opts.Target, "instead of tokenwise")
	if e.memory, err = e.dial("target", e.opts.Target); err != nil {
		return err
	}
	e.nocache = e.memory
	for _, s := range sel {
		switch {
		case s.redis:
			e.skipped[s.name] = "runs on tokenwise's Redis store; not with --target"
		case s.http:
			e.skipped[s.name] = "runs on tokenwise's HTTP authorization mode; not with --target"
		case s.dpop:
			e.skipped[s.name] = "DPoP is verified by tokenwise; not with --target"
		}
	}
	fmt.Fprintf(e.opts.Progress, "bench: minting %d RS256 tokens for the pool\n", poolSize)
	e.pool, err = mintParallel(ctx, e.issuer, "RS256", poolSize)
	return err
}

// needsNocache reports whether sel has a scenario on the nocache server.
func needsNocache(sel []*scenario) bool {
	for _, s := range sel {
		if s.nocache {
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
	case s == httpFloor:
		return e.httpFloor
	case s.http:
		return e.httpAuthz
	case s.redis:
		return e.redis[s.redisKind]
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

// startTokenwise runs a tokenwise server with the policy policyDir names and the given use-limit store (with redis,
// when not nil, as its Redis settings), and waits until its JWKS is loaded.
// name labels it in profiles.
func (e *env) startTokenwise(ctx context.Context, issURL, name, store string, redis *config.Redis) (*target, error) {
	cfg := config.Default()
	cfg.GRPC.Address, cfg.HTTP.Address = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Issuers = []config.Issuer{{
		Name: "bench", Issuer: issURL, JWKSURL: issURL + "/jwks.json",
		Audiences: []string{audience}, Algorithms: []string{"RS256", "ES256"},
	}}
	cfg.Policy.Paths = []string{filepath.Join(e.dir, policyDir(name))}
	cfg.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	cfg.UseLimits.Store = store
	if redis != nil {
		cfg.UseLimits.Redis = *redis
	}
	// The load generator runs Checks without a deadline, so a use-limit call
	// may wait up to its 2s fallback; rate limits get the same, so that a
	// machine saturated by the generator itself compares the two store calls
	// rather than timing out one of them.
	cfg.RateLimits.Timeout = 2 * time.Second
	cfg.Log.Level = "info"
	if name == "memory" {
		// The same server answers the HTTP scenarios on its HTTP listener.
		cfg.HTTPAuthz.Address = "127.0.0.1:0"
	}
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
	if addr := srv.HTTPAuthzAddr(); addr != "" {
		e.httpAuthz = e.newHTTPTarget("tokenwise-http", addr)
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

// startRedisTarget runs the Redis-backed tokenwise server scenario s needs,
// on the Redis it describes: for one-time-redis, --redis or a redis-server
// started here; for the others, the cluster or the replicated pair started
// here. When that Redis cannot start, the scenario is skipped.
func (e *env) startRedisTarget(ctx context.Context, issURL string, s *scenario) error {
	redis, what, err := e.startRedis(s.redisKind)
	if err != nil {
		e.skipped[s.name] = fmt.Sprintf("no Redis: pass --redis ADDR or install redis-server (%v)", err)
		fmt.Fprintf(e.opts.Progress, "bench: skipping %s: %s\n", s.name, e.skipped[s.name])
		return nil
	}
	fmt.Fprintln(e.opts.Progress, "bench:", what)
	name := "redis"
	if s.redisKind != "" {
		name += "-" + s.redisKind
	}
	t, err := e.startTokenwise(ctx, issURL, name, "redis", redis)
	if err != nil {
		return fmt.Errorf("tokenwise on %s: %w", what, err)
	}
	e.redis[s.redisKind] = t
	return nil
}

// startRedis starts the Redis of a redisKind and returns the settings that
// reach it and what it is, for the progress output.
func (e *env) startRedis(kind string) (*config.Redis, string, error) {
	dir, err := os.MkdirTemp(e.dir, "redis-")
	if err != nil {
		return nil, "", err
	}
	switch kind {
	case redisCluster:
		c, err := redisproc.StartCluster(e.opts.RedisBinary, dir, 3)
		if err != nil {
			return nil, "", err
		}
		e.stops = append(e.stops, c.Stop)
		r := defaultRedis()
		r.Mode, r.Addresses = config.RedisCluster, c.Addrs()
		return r, "started a three-master Redis Cluster on " + strings.Join(c.Addrs(), " "), nil
	case redisWait:
		g, err := redisproc.StartReplicated(e.opts.RedisBinary, dir, 1)
		if err != nil {
			return nil, "", err
		}
		e.stops = append(e.stops, g.Stop)
		r := defaultRedis()
		r.Address, r.WaitReplicas = g.Master.Addr(), 1
		return r, fmt.Sprintf("started redis-server on %s with a replica on %s (wait_replicas: 1)", g.Master.Addr(), g.Replicas[0].Addr()), nil
	}
	r := defaultRedis()
	if e.opts.RedisAddr != "" {
		r.Address = e.opts.RedisAddr
		return r, "using Redis at " + e.opts.RedisAddr, nil
	}
	srv, err := redisproc.Start(e.opts.RedisBinary, dir)
	if err != nil {
		return nil, "", err
	}
	e.stops = append(e.stops, srv.Stop)
	r.Address = srv.Addr()
	return r, "started redis-server on " + srv.Addr(), nil
}

// defaultRedis is the default Redis configuration, standalone.
func defaultRedis() *config.Redis {
	r := config.Default().UseLimits.Redis
	return &r
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
	return parallel(ctx, n, func(i int) (string, error) {
		return iss.Mint(devissuer.Token{
			Subject: fmt.Sprintf("user-%d", i), Scopes: []string{"orders:read", "payments:write"},
			Lifetime: time.Hour, Alg: alg,
		})
	})
}
