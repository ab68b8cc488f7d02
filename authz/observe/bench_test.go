package observe

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// benchEntry is a decision-log entry as a reused-token allow writes it.
var benchEntry = Entry{
	DecisionID: "0123456789abcdef01234567", RequestID: "5f0c7b8e-3a3c-4c9e-9b1a-1b2c3d4e5f60",
	Method: "GET", Path: "/orders/42?view=full", Issuer: "corp", Subject: "user-42", JTI: "j-42",
	Outcome: "allow", Reason: "allowed", Took: 123456 * time.Nanosecond,
}

// BenchmarkDecisionLog is one decision-log line through a JSON handler, as
// tokenwise serve writes it (to a discarding writer here).
func BenchmarkDecisionLog(b *testing.B) {
	l := NewDecisionLog(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Log(ctx, benchEntry)
	}
}

// BenchmarkMetricsDecision is the per-Check metrics: one counter, one histogram.
func BenchmarkMetricsDecision(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.Decision("allow", "allowed", 123*time.Microsecond)
	}
}
