package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tokenwise/tokenwise/authz/config"
)

// collector is an OTLP/gRPC trace receiver on loopback that keeps what it receives.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startCollector(t *testing.T) *collector {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{addr: lis.Addr().String()}
	g := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(g, c)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return c
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// trace returns the spans received for traceID, by name.
func (c *collector) trace(traceID string) map[string]*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range c.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID {
			out[s.GetName()] = s
		}
	}
	return out
}

// Each Check is a span in the trace Envoy started, with verification, policy
// and use limit as children, exported over OTLP.
func TestChecksAreTracedIntoEnvoysTrace(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export batches quickly
	col := startCollector(t)
	h := start(t, func(c *config.Config) {
		c.Tracing = config.Tracing{OTLPEndpoint: col.addr, Insecure: true, ServiceName: "tokenwise"}
	})
	h.waitReady()
	token := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "jti": "traced"})

	// Envoy puts its ext_authz span's context in the gRPC metadata (W3C).
	const w3cTrace, envoySpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+w3cTrace+"-"+envoySpan+"-01")
	if _, err := h.client.Check(ctx, envoyRequest("POST", "/pay", bearer(token))); err != nil {
		t.Fatal(err)
	}
	var spans map[string]*tracepb.Span
	eventually(t, 10*time.Second, func() bool { spans = col.trace(w3cTrace); return len(spans) == 4 })
	check := spans["tokenwise.Check"]
	if hex.EncodeToString(check.GetParentSpanId()) != envoySpan {
		t.Errorf("the Check span's parent is %x, want Envoy's span %s", check.GetParentSpanId(), envoySpan)
	}
	for _, child := range []string{"tokenwise.verify", "tokenwise.policy", "tokenwise.use_limit"} {
		if string(spans[child].GetParentSpanId()) != string(check.GetSpanId()) {
			t.Errorf("%s is not a child of the Check span", child)
		}
	}

	// B3 headers on the downstream request are joined too.
	const b3Trace = "463ac35c9f6413ad48485a3953bb6124"
	req := envoyRequest("GET", "/public/x", map[string]string{"x-b3-traceid": b3Trace, "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1"})
	h.check(req)
	eventually(t, 10*time.Second, func() bool { return col.trace(b3Trace)["tokenwise.Check"] != nil })
}
