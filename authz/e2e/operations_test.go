package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

func (h *harness) health() healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return resp.GetStatus()
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.srv.HTTPAddr() + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A JWKS that is down at start leaves tokenwise live but not ready; it
// refuses tokens (never allows them) and becomes ready once the JWKS loads.
func TestAJWKSDownAtStartMeansLiveButNotReady(t *testing.T) {
	idp := verifytest.NewIssuer(t)
	idp.SetDown(true)
	h := startPolicy(t, "package envoy.authz\n\nallow := true\n", func(c *config.Config) {
		c.Issuers[0] = idp.Config("corp")
	})
	if code, _ := h.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while the JWKS is down; liveness must not depend on it", code)
	}
	if h.readyz() != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while the JWKS never loaded", h.readyz())
	}
	if s := h.health(); s != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("grpc health = %v", s)
	}
	token := idp.Mint(map[string]any{"sub": "alice"})
	if a := read(h.check(envoyRequest("GET", "/x", bearer(token)))); a.allowed || a.status != 503 {
		t.Errorf("a token was not refused (503, retry later) while its issuer's keys never loaded: %+v", a)
	}

	idp.SetDown(false)
	h.waitReady()
	eventually(t, 3*time.Second, func() bool { return h.health() == healthpb.HealthCheckResponse_SERVING })
	if a := read(h.check(envoyRequest("GET", "/x", bearer(token)))); !a.allowed {
		t.Errorf("refused after the JWKS came back: %+v", a)
	}
}

// Editing a policy file on disk changes decisions; a broken edit is refused
// and the running policy stays.
func TestPoliciesReloadWhenTheirFilesChange(t *testing.T) {
	h := startPolicy(t, "package envoy.authz\n\ndefault allow := false\n")
	h.waitReady()
	req := envoyRequest("GET", "/public", nil)
	if read(h.check(req)).allowed {
		t.Fatal("allowed before the edit")
	}
	h.writePolicy("policy.rego", "package envoy.authz\n\nallow := true\n")
	eventually(t, 5*time.Second, func() bool { return read(h.check(req)).allowed })

	h.writePolicy("policy.rego", "package envoy.authz\n\nallow := {{{ broken\n")
	eventually(t, 5*time.Second, func() bool {
		_, metrics := h.get("/metrics")
		return strings.Contains(metrics, `tokenwise_policy_reloads_total{result="failure"} 1`)
	})
	if !read(h.check(req)).allowed {
		t.Fatal("a broken policy replaced the running one")
	}
	if !strings.Contains(h.logs.String(), "policy") {
		t.Error("the refused policy was not logged")
	}
}

func TestMetricsAndTheDecisionLog(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Token.QueryParameter = "access_token" })
	h.waitReady()
	token := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read", "jti": "id-77"})
	read(h.check(envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Bearer " + token, "x-request-id": "req-allow", "cookie": "session=secret-cookie"})))
	read(h.check(envoyRequest("GET", "/orders/1?access_token="+token, map[string]string{"x-request-id": "req-query"})))
	read(h.check(envoyRequest("GET", "/orders/1", nil)))

	_, metrics := h.get("/metrics")
	for _, series := range []string{
		`tokenwise_decisions_total{outcome="allow",reason="allowed"} 2`,
		`tokenwise_decisions_total{outcome="deny",reason="policy_denied"} 1`,
		`tokenwise_check_duration_seconds_count 3`,
		`tokenwise_jwks_refreshes_total{issuer="corp"}`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}

	var lines []map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "decision" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d decision lines, want one per Check", len(lines))
	}
	first := lines[0]
	for key, want := range map[string]any{"request_id": "req-allow", "method": "GET", "path": "/orders/1", "issuer": "corp", "sub": "alice", "jti": "id-77", "outcome": "allow"} {
		if first[key] != want {
			t.Errorf("decision log %s = %v, want %v", key, first[key], want)
		}
	}
	if lines[1]["path"] != "/orders/1?access_token=REDACTED" {
		t.Errorf("logged path = %v; the query token must be redacted", lines[1]["path"])
	}
	if strings.Contains(h.logs.String(), "secret-cookie") {
		t.Error("a cookie reached the log")
	}
}
