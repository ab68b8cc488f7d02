package server

import (
	"context"
	"log/slog"
	"sync"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// readiness is the one source of truth for /readyz and grpc.health.v1.
// Every probe of either re-reads the server's state and, under one lock,
// updates the gRPC health status before it answers, so the two never
// disagree: /readyz saying ready means a health Check that follows says
// SERVING, and the other way round. A ticker refreshes it too, for Watch.
type readiness struct {
	mu     sync.Mutex
	ready  bool
	closed bool // shutting down: not ready, whatever probe says
	health *health.Server
	probe  func() bool
	logger *slog.Logger
}

// refresh reads the state now, publishes a change to the health server and
// returns whether the server is ready.
func (r *readiness) refresh() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := !r.closed && r.probe()
	if now == r.ready {
		return now
	}
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if now {
		status = healthpb.HealthCheckResponse_SERVING
	}
	r.health.SetServingStatus("", status)
	r.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, status)
	r.ready = now
	r.logger.Info("readiness changed", "status", status.String())
	return now
}

// close marks the server not ready for good (draining).
func (r *readiness) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed, r.ready = true, false
}

// healthService is grpc-go's health server with each Check and List
// refreshing the readiness state first.
type healthService struct {
	*health.Server
	ready *readiness
}

// Check answers a health probe from the state as it is now.
func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.ready.refresh()
	return h.Server.Check(ctx, req)
}

// List answers with every service's status as it is now.
func (h *healthService) List(ctx context.Context, req *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	h.ready.refresh()
	return h.Server.List(ctx, req)
}
