package observe

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// Tracing is where Check spans go: an OTLP exporter when configured, or
// nowhere (a no-op tracer that costs next to nothing on the hot path). A nil
// *Tracing records nothing, like NoTracing.
type Tracing struct {
	enabled    bool
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// TracingConfig says where and how spans are exported.
type TracingConfig struct {
	// Endpoint is the OTLP/gRPC collector's host:port; "" turns tracing off.
	Endpoint    string
	Insecure    bool
	SampleRatio float64
	ServiceName string
}

// NoTracing records no spans.
func NoTracing() *Tracing {
	return &Tracing{shutdown: func(context.Context) error { return nil }}
}

// NewTracing exports spans over OTLP/gRPC as cfg says, or records none when
// cfg.Endpoint is empty. The exporter connects lazily, so a collector that is
// down never delays start-up or a Check.
func NewTracing(cfg TracingConfig) (*Tracing, error) {
	if cfg.Endpoint == "" {
		return NoTracing(), nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exporter, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	return TracingWith(sdktrace.NewBatchSpanProcessor(exporter), cfg), nil
}

// TracingWith records spans into processor (tests use an in-memory one).
func TracingWith(processor sdktrace.SpanProcessor, cfg TracingConfig) *Tracing {
	res := resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName))
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(processor),
		sdktrace.WithResource(res),
		// Follow Envoy's sampling decision; sample new traces, and traces a
		// client started, at the ratio.
		sdktrace.WithSampler(checkSampler{ratio: cfg.SampleRatio, trusted: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))}),
	)
	return &Tracing{enabled: true, tracer: provider.Tracer("github.com/tokenwise/tokenwise"), propagator: propagator(), shutdown: provider.Shutdown}
}

// propagator reads W3C traceparent and both B3 encodings.
func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{},
		b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader|b3.B3SingleHeader)),
	)
}

// noSpan is the span Start returns when tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

// Start starts a span named name under ctx's. With tracing off it returns ctx
// itself and a span that does nothing, so the hot path pays no context
// allocation per stage.
func (t *Tracing) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil || !t.enabled {
		return ctx, noSpan
	}
	return t.tracer.Start(ctx, name, opts...)
}

// Join returns ctx carrying the trace Envoy started for this request. Envoy
// puts the context of its ext_authz span in the gRPC metadata; the
// downstream request's own headers are the fallback, and since a client
// wrote them they may parent the Check's span but never force its sampling.
func (t *Tracing) Join(ctx context.Context, requestHeaders map[string]string) context.Context {
	if t == nil || !t.enabled {
		return ctx
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if joined := t.propagator.Extract(ctx, metadataCarrier(md)); trace.SpanContextFromContext(joined).IsValid() {
			return joined
		}
	}
	joined := t.propagator.Extract(ctx, propagation.MapCarrier(requestHeaders))
	sc := trace.SpanContextFromContext(joined)
	if !sc.IsValid() {
		return ctx
	}
	// The client wrote these headers: its trace may parent the span, but its
	// sampled flag must not decide whether tokenwise exports (checkSampler).
	return context.WithValue(joined, untrustedParentKey{}, sc)
}

// untrustedParentKey marks, in a context, the remote span context that came
// from the downstream client rather than from Envoy.
type untrustedParentKey struct{}

// checkSampler samples a span whose parent is a client's remote context at
// the ratio, by a random draw (a client also chooses its trace id, which a
// trace-id ratio would let it aim); every other span as trusted says (Envoy's
// decision for its own context, the ratio for a new trace, the parent's for
// a local child).
type checkSampler struct {
	ratio   float64
	trusted sdktrace.Sampler
}

// ShouldSample implements sdktrace.Sampler.
func (s checkSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	parent := trace.SpanContextFromContext(p.ParentContext)
	untrusted, _ := p.ParentContext.Value(untrustedParentKey{}).(trace.SpanContext)
	if !parent.IsRemote() || !parent.Equal(untrusted) {
		return s.trusted.ShouldSample(p)
	}
	decision := sdktrace.Drop
	if s.ratio >= 1 || s.ratio > 0 && rand.Float64() < s.ratio {
		decision = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: decision, Tracestate: parent.TraceState()}
}

// Description implements sdktrace.Sampler.
func (s checkSampler) Description() string {
	return fmt.Sprintf("tokenwise{client parents at %g; %s}", s.ratio, s.trusted.Description())
}

// Shutdown flushes spans that are still buffered, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return t.shutdown(ctx)
}

// metadataCarrier reads gRPC metadata as a propagation carrier.
type metadataCarrier metadata.MD

func (m metadataCarrier) Get(key string) string {
	if v := metadata.MD(m).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m metadataCarrier) Set(key, value string) { metadata.MD(m).Set(key, value) }

func (m metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
