package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/resource"
	"github.com/tokenwise/tokenwise/authz/revoke"
	"github.com/tokenwise/tokenwise/authz/source"
	"github.com/tokenwise/tokenwise/authz/uselimit"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// Options adjust how a Server is built from its configuration.
type Options struct {
	// Logger receives the process log and the decision log (nil: slog.Default()).
	Logger *slog.Logger
	// PolicyFS, when set, is where policy.paths are read from instead of the
	// disk; such a policy is not watched for changes.
	PolicyFS fs.FS
	// Handlers are extra routes for the operations listener (the dev issuer).
	Handlers map[string]http.Handler
	// HTTPListener, when set, is the operations listener, already bound:
	// the dev issuer binds it first so that its JWKS URL is known and
	// answers from the first fetch.
	HTTPListener net.Listener
	// Tracing, when set, replaces the tracing the configuration asks for
	// (tests collect spans in memory this way).
	Tracing *observe.Tracing
	// DrainTimeout bounds how long a shutdown waits for in-flight Checks (default 15s).
	DrainTimeout time.Duration
}

// Server is a running tokenwise: its pipeline stages and its two listeners.
type Server struct {
	cfg      *config.Config
	opts     Options
	logger   *slog.Logger
	metrics  *observe.Metrics
	tracing  *observe.Tracing
	verifier *verify.Verifier
	policy   *policy.Engine
	store    uselimit.Store
	revoked  *revoke.Set
	rates    *rateStage
	pop      *popStage
	authz    *Authorizer
	health   *health.Server
	ready    *readiness
	grpc     *grpc.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	// httpAuthz is the HTTP authorization listener (nil: http_authz is off).
	httpAuthz    *http.Server
	httpAuthzLis net.Listener
}

// New builds every stage from cfg: it compiles the policy (an error names the
// fault), starts loading each issuer's JWKS in the background and opens the
// use-limit store. It does not listen yet; see Listen.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 15 * time.Second
	}
	s := &Server{cfg: cfg, opts: opts, logger: opts.Logger, metrics: observe.NewMetrics()}
	var err error
	s.policy, err = policy.New(ctx, cfg.Policy, policy.Options{Metrics: s.metrics, Logger: s.logger, FS: opts.PolicyFS})
	if err != nil {
		return nil, err
	}
	if s.tracing, err = newTracing(cfg.Tracing, opts.Tracing); err != nil {
		return nil, err
	}
	s.store, err = uselimit.New(cfg.UseLimits, s.metrics)
	if err != nil {
		return nil, err
	}
	if s.revoked, err = revoke.New(cfg.UseLimits, revoke.Options{Logger: s.logger}); err != nil {
		s.Close()
		return nil, err
	}
	if s.rates, err = newRateStage(cfg, s.metrics, s.logger); err != nil {
		s.Close()
		return nil, err
	}
	s.verifier, err = verify.New(cfg.Issuers, verify.Options{Metrics: s.metrics, Logger: s.logger, MaxTokenBytes: cfg.Token.MaxBytes, CacheSize: cfg.Token.CacheSize})
	if err != nil {
		s.Close()
		return nil, err
	}
	if s.pop, err = newPoPStage(cfg, s.logger); err != nil {
		s.Close()
		return nil, err
	}
	s.authz = &Authorizer{
		pop:          s.pop,
		finder:       source.New(cfg.Token),
		verifier:     s.verifier,
		policy:       s.policy,
		revoked:      s.revoked,
		limits:       s.store,
		rates:        s.rates,
		claims:       claimHeaders(cfg.Forward),
		removeBearer: cfg.Forward.RemoveAuthorization,
		maxTTL:       cfg.UseLimits.MaxTTL,
		failOpen:     cfg.UseLimits.OnStoreError == "allow",
		metrics:      s.metrics,
		tracing:      s.tracing,
		log:          observe.NewDecisionLog(s.logger),
		logger:       s.logger,
	}
	if s.authz.resource, err = resource.New(cfg.ResourceMetadata, cfg.Issuers, cfg.Token); err != nil {
		s.Close()
		return nil, err
	}
	if s.httpAuthz, err = s.newHTTPAuthz(); err != nil {
		s.Close()
		return nil, err
	}
	if s.grpc, err = s.newGRPC(); err != nil {
		s.Close()
		return nil, err
	}
	s.http = &http.Server{Handler: s.opsHandler(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Authorizer returns the Check service, for callers that drive it without a
// listener (tokenwise check).
func (s *Server) Authorizer() *Authorizer { return s.authz }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *observe.Metrics { return s.metrics }

// streamWorkers is how many Checks run on long-lived goroutines at once:
// enough for Envoy's usual concurrency on this many cores.
func streamWorkers() uint32 {
	return uint32(max(64, 16*runtime.GOMAXPROCS(0)))
}

// GRPCServerOptions are the grpc-go server options tokenwise serves with for
// c, TLS included. `tokenwise bench` gives its no-op floor server the same.
func GRPCServerOptions(c config.GRPC) ([]grpc.ServerOption, error) {
	opts := []grpc.ServerOption{
		// Envoy keeps a few long-lived HTTP/2 connections and pings them.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	// Above the largest CheckRequest Envoy sends: a bigger one would fail
	// before Check runs, and failure_mode_allow turns that into an allow.
	opts = append(opts, grpc.MaxRecvMsgSize(c.ReceiveLimit(config.DefaultMaxBodyBytes)))
	// Long-lived stream workers instead of a goroutine per Check: a new
	// goroutine's stack starts small and a Check grows it by copying, which
	// the reuse profile showed at about a fifth of tokenwise's own CPU. With
	// workers (and a goroutine per stream only when all are busy) reuse went
	// from 0.76x to 0.79x the floor and deny from 0.74x to 0.77x in the same
	// interleaved bench, and the floor, which gets these options too, rose
	// as well.
	opts = append(opts, grpc.NumStreamWorkers(streamWorkers()))
	if n := c.MaxConcurrentStreams; n > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(n))
	}
	if c.TLS.Enabled() {
		tc, err := serverTLS(c.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	return opts, nil
}

func (s *Server) newGRPC() (*grpc.Server, error) {
	opts, err := GRPCServerOptions(s.cfg.GRPC)
	if err != nil {
		return nil, err
	}
	admin, err := newAdmin(s.cfg, s.revoked, s.store, s.logger)
	if err != nil {
		return nil, err
	}
	adminOpts, err := admin.serverOptions(s.cfg.GRPC.TLS)
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(append(opts, adminOpts...)...)
	authv3.RegisterAuthorizationServer(g, s.authz)
	admin.register(g)
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	s.ready = &readiness{health: s.health, probe: s.Ready, logger: s.logger}
	healthpb.RegisterHealthServer(g, &healthService{Server: s.health, ready: s.ready})
	if s.cfg.GRPC.ReflectionEnabled() {
		reflection.Register(g)
	}
	return g, nil
}

func serverTLS(c config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("grpc.tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("grpc.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("grpc.tls.client_ca_file %s: no PEM certificates", c.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func (s *Server) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.refresh() {
			http.Error(w, "not ready: waiting for every issuer's JWKS and the revocation set to load", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	for pattern, h := range s.opts.Handlers {
		mux.Handle(pattern, h)
	}
	return mux
}

// Ready reports whether the server can answer Checks correctly: the policy
// compiled (New would have failed otherwise), every issuer's JWKS loaded
// once and the revocation set loaded once from its store (at once for the
// memory store). Each stays loaded: a later Redis or JWKS outage keeps the
// last set and leaves the server ready, so it does not take every replica
// out of the load balancer. /readyz and grpc.health.v1 both read it through
// one readiness state (see readiness).
func (s *Server) Ready() bool {
	return s.verifier.Ready() && (s.revoked == nil || s.revoked.Loaded())
}

// Listen binds both listeners; a taken port is an error naming the address.
func (s *Server) Listen() error {
	var err error
	if s.grpcLis, err = net.Listen("tcp", s.cfg.GRPC.Address); err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	if s.httpLis = s.opts.HTTPListener; s.httpLis == nil {
		if s.httpLis, err = net.Listen("tcp", s.cfg.HTTP.Address); err != nil {
			s.grpcLis.Close()
			return fmt.Errorf("http listener: %w", err)
		}
	}
	if err := s.listenHTTPAuthz(); err != nil {
		s.grpcLis.Close()
		s.httpLis.Close()
		return err
	}
	return nil
}

// GRPCAddr is the gRPC listener's address, once Listen has run.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the operations listener's address, once Listen has run.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Serve answers on both listeners until ctx ends, then drains: health turns
// NOT_SERVING, in-flight Checks finish (up to the drain timeout) and Serve
// returns nil. Listen must have run.
func (s *Server) Serve(ctx context.Context) error {
	errs := make(chan error, 3)
	go func() { errs <- s.grpc.Serve(s.grpcLis) }()
	go func() { errs <- ignoreClosed(s.http.Serve(s.httpLis)) }()
	if s.httpAuthz != nil {
		go func() { errs <- s.serveHTTPAuthz() }()
	}
	go s.policy.Watch(ctx)
	go s.trackReadiness(ctx)
	select {
	case <-ctx.Done():
	case err := <-errs:
		s.shutdown()
		return err
	}
	s.shutdown()
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// trackReadiness refreshes the readiness state until ctx ends, so that
// grpc.health.v1 Watch streams hear of a change without a probe asking.
func (s *Server) trackReadiness(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s.ready.refresh()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) shutdown() {
	s.ready.close()
	s.health.Shutdown()
	authzDrained := make(chan struct{})
	go func() { s.drainHTTPAuthz(); close(authzDrained) }()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.DrainTimeout):
		s.logger.Warn("drain timed out; closing remaining connections")
		s.grpc.Stop()
	}
	<-authzDrained
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	s.Close()
}

func newTracing(c config.Tracing, override *observe.Tracing) (*observe.Tracing, error) {
	if override != nil {
		return override, nil
	}
	ratio := 1.0
	if c.SampleRatio != nil {
		ratio = *c.SampleRatio
	}
	t, err := observe.NewTracing(observe.TracingConfig{Endpoint: c.OTLPEndpoint, Insecure: c.Insecure, SampleRatio: ratio, ServiceName: c.ServiceName})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return t, nil
}

// Close releases the stages' resources (JWKS refreshers, the store) and
// flushes buffered spans.
func (s *Server) Close() {
	if s.tracing != nil {
		_ = s.tracing.Shutdown(context.Background())
	}
	if s.verifier != nil {
		s.verifier.Close()
	}
	if s.revoked != nil {
		s.revoked.Close()
	}
	if s.store != nil {
		_ = s.store.Close()
	}
	s.rates.close()
	s.pop.close()
}
