package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

// TestDecisionLogLine: one JSON line with every field, latency in whole
// microseconds, and nothing below the handler's level.
func TestDecisionLogLine(t *testing.T) {
	var buf bytes.Buffer
	l := NewDecisionLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	e := benchEntry
	e.Status = 403
	l.Log(context.Background(), e)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for k, want := range map[string]any{"msg": "decision", "level": "INFO", "decision_id": e.DecisionID,
		"request_id": e.RequestID, "method": "GET", "path": e.Path, "issuer": "corp", "sub": "user-42",
		"jti": "j-42", "outcome": "allow", "reason": "allowed", "status": float64(403), "latency_us": float64(123)} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if _, ok := m["time"]; !ok {
		t.Error("no time")
	}
	buf.Reset()
	NewDecisionLog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))).Log(context.Background(), e)
	if buf.Len() != 0 {
		t.Errorf("logged below the handler's level: %s", buf.String())
	}
}
