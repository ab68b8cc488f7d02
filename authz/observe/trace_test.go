package observe

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"
)

func TestJoinFollowsEnvoysTraceContext(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tr := TracingWith(sdktrace.NewSimpleSpanProcessor(spans), TracingConfig{SampleRatio: 0, ServiceName: "tokenwise"})
	cases := []struct {
		name     string
		metadata map[string]string
		headers  map[string]string
		trace    string
	}{
		{"W3C in gRPC metadata", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, nil, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"B3 single header in gRPC metadata", map[string]string{"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"}, nil, "80f198ee56343ba864fe8b2a57d3eff7"},
		{"metadata wins over the request", map[string]string{"traceparent": "00-11111111111111111111111111111111-00f067aa0ba902b7-01"},
			map[string]string{"traceparent": "00-22222222222222222222222222222222-00f067aa0ba902b7-01"}, "11111111111111111111111111111111"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spans.Reset()
			ctx := metadata.NewIncomingContext(context.Background(), metadata.New(c.metadata))
			_, span := tr.Start(tr.Join(ctx, c.headers), "tokenwise.Check")
			span.End()
			got := spans.GetSpans()
			// SampleRatio 0: only a sampled parent can make this span recorded.
			if len(got) != 1 || got[0].SpanContext.TraceID().String() != c.trace || !got[0].Parent.IsRemote() {
				t.Fatalf("spans = %+v, want one in trace %s under Envoy's span", got, c.trace)
			}
		})
	}
}

func TestNoTracingRecordsNothing(t *testing.T) {
	for _, tr := range []*Tracing{NoTracing(), nil} {
		_, span := tr.Start(tr.Join(context.Background(), nil), "x")
		if span.IsRecording() || span.SpanContext().IsValid() && span.SpanContext().TraceFlags().IsSampled() {
			t.Errorf("a span was recorded without tracing")
		}
		span.End()
	}
	if _, err := NewTracing(TracingConfig{}); err != nil {
		t.Fatal(err)
	}
}

// A trace context the client sent in the request's headers parents the
// span, but its sampled flag does not force sampling: at ratio 0 nothing is
// recorded, at ratio 1 the span joins the client's trace.
func TestClientTraceContextNeverForcesSampling(t *testing.T) {
	for _, headers := range []map[string]string{
		{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"x-b3-traceid": "4bf92f3577b34da6a3ce929d0e0e4736", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1"},
		{"x-b3-traceid": "4bf92f3577b34da6a3ce929d0e0e4736", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-flags": "1"},
		{"b3": "4bf92f3577b34da6a3ce929d0e0e4736-e457b5a2e4d86bd1-d"},
	} {
		for _, ratio := range []float64{0, 1} {
			spans := tracetest.NewInMemoryExporter()
			tr := TracingWith(sdktrace.NewSimpleSpanProcessor(spans), TracingConfig{SampleRatio: ratio, ServiceName: "tokenwise"})
			ctx, span := tr.Start(tr.Join(context.Background(), headers), "tokenwise.Check")
			_, child := tr.Start(ctx, "tokenwise.verify")
			child.End()
			span.End()
			got := spans.GetSpans()
			switch {
			case ratio == 0 && len(got) != 0:
				t.Errorf("%v at ratio 0: %d spans exported", headers, len(got))
			case ratio == 1 && (len(got) != 2 || got[1].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736"):
				t.Errorf("%v at ratio 1: spans %+v, want two in the client's trace", headers, got)
			}
		}
	}
	// Envoy's own context (gRPC metadata) is still followed at ratio 0.
	spans := tracetest.NewInMemoryExporter()
	tr := TracingWith(sdktrace.NewSimpleSpanProcessor(spans), TracingConfig{SampleRatio: 0, ServiceName: "tokenwise"})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.New(map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}))
	_, span := tr.Start(tr.Join(ctx, map[string]string{"x-b3-sampled": "1"}), "tokenwise.Check")
	span.End()
	if len(spans.GetSpans()) != 1 {
		t.Errorf("Envoy's sampled context not followed")
	}
}
