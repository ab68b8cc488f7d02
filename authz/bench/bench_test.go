package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

// tiny is a run small enough for a test: it checks the engine works end to
// end, not how fast anything is.
func tiny(scenarios ...string) Options {
	return Options{Scenarios: scenarios, Concurrency: 4, Connections: 2, Duration: 200 * time.Millisecond, Rounds: 1}
}

func TestRunReportsEveryScenarioAgainstTheFloor(t *testing.T) {
	var progress bytes.Buffer
	opts := tiny("reuse", "anonymous")
	opts.Progress = &progress
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rep.Scenarios); got != 2 {
		t.Fatalf("%d scenarios in the report, want 2", got)
	}
	for _, res := range append(rep.Scenarios, rep.Floor) {
		if res.ChecksPerSec <= 0 || res.Checks <= 0 || res.Ratio <= 0 || res.P99us <= 0 || res.CPUSecPer1000 <= 0 {
			t.Errorf("%s: no measurement: %+v", res.Scenario, res)
		}
		// Every answer was the expected one: an allow for a valid token on
		// orders, an allow without a token on a public route.
		if res.Errors != 0 {
			t.Errorf("%s: %d unexpected answers, first: %s", res.Scenario, res.Errors, res.FirstError)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"floor", "reuse", "anonymous", "Checks/s", "x floor", "p99.9"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if !strings.Contains(progress.String(), "round 1/1 reuse") {
		t.Errorf("no progress for reuse:\n%s", progress.String())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Scenarios) != 2 || back.Scenarios[0].Scenario != "reuse" {
		t.Fatalf("JSON report does not round-trip: %v\n%s", err, js.String())
	}
}

// TestOneTimeTokensAreAllowedOnceEach runs the fresh-token scenarios: every
// one-time token must be allowed (its first use), so errors stay at zero,
// on the memory store and on a redis-server the engine starts itself.
func TestOneTimeTokensAreAllowedOnceEach(t *testing.T) {
	rep, err := Run(context.Background(), tiny("one-time-memory", "one-time-redis", "one-time-redis-cluster", "one-time-redis-wait", "deny"))
	if err != nil {
		t.Fatal(err)
	}
	for name, why := range rep.Skipped {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s skipped in CI: %s", name, why)
		}
		t.Logf("%s skipped: %s", name, why)
	}
	if len(rep.Scenarios) < 2 {
		t.Fatalf("scenarios ran: %+v", rep.Scenarios)
	}
	for _, res := range rep.Scenarios {
		if res.Checks <= 0 || res.Errors != 0 {
			t.Errorf("%s: %d checks, %d unexpected answers, first: %s", res.Scenario, res.Checks, res.Errors, res.FirstError)
		}
	}
}

func TestReuseHalfRunsOpenLoopAtHalfOfReuse(t *testing.T) {
	rep, err := Run(context.Background(), tiny("reuse-half"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 2 || rep.Scenarios[0].Scenario != "reuse" || rep.Scenarios[1].Scenario != "reuse-half" {
		t.Fatalf("reuse-half should bring reuse along: %+v", rep.Scenarios)
	}
	reuse, half := rep.Scenarios[0], rep.Scenarios[1]
	if half.Rate <= 0 || half.Rate > reuse.ChecksPerSec {
		t.Fatalf("reuse-half rate %.0f, reuse %.0f Checks/s", half.Rate, reuse.ChecksPerSec)
	}
}

func TestUnknownScenarioIsAnError(t *testing.T) {
	_, err := Run(context.Background(), tiny("nope"))
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "reuse") {
		t.Fatalf("err = %v, want one naming the scenario and the choices", err)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	st := runStats{latencies: []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	for p, want := range map[float64]time.Duration{0.5: 5, 0.9: 9, 0.99: 10, 0.999: 10, 0: 1} {
		if got := st.percentile(p); got != want {
			t.Errorf("percentile(%v) = %v, want %v", p, got, want)
		}
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
}

func TestFreshFeedRunsOut(t *testing.T) {
	f := newFeed(fresh, []string{"a", "b"})
	seen := map[string]bool{}
	for i := range 2 {
		v, ok := f.value(i, 0)
		if !ok || seen[v] {
			t.Fatalf("value %d = %q, %v", i, v, ok)
		}
		seen[v] = true
	}
	if _, ok := f.value(0, 1); ok {
		t.Fatal("a fresh feed handed out a token twice")
	}
}

// TestHTTPModeScenario runs http-reuse against its own floor, a no-op HTTP
// server: every answer must be tokenwise's 200 over HTTP.
func TestHTTPModeScenario(t *testing.T) {
	rep, err := Run(context.Background(), tiny("http-reuse"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("%d scenarios", len(rep.Scenarios))
	}
	res := rep.Scenarios[0]
	if res.Errors != 0 || res.Checks <= 0 || res.Ratio <= 0 || res.FloorChecksPerSec <= 0 {
		t.Fatalf("http-reuse: %+v", res)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "no-op HTTP server") {
		t.Errorf("the table must say what http-reuse is measured against:\n%s", table.String())
	}
}

// TestDPoPScenarioProvesEveryCheck: every Check of the dpop scenario carries
// a fresh proof that tokenwise accepts, so no answer is unexpected.
func TestDPoPScenarioProvesEveryCheck(t *testing.T) {
	rep, err := Run(context.Background(), tiny("dpop"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("scenarios ran: %+v", rep.Scenarios)
	}
	if res := rep.Scenarios[0]; res.Checks <= 0 || res.Errors != 0 {
		t.Errorf("dpop: %d checks, %d unexpected answers, first: %s", res.Checks, res.Errors, res.FirstError)
	}
}

// TestReuseNocache runs reuse-nocache against its own server, whose policy
// reads x-request-id: every answer is still the expected allow.
func TestReuseNocache(t *testing.T) {
	if !strings.Contains(nocachePolicy, `headers["x-request-id"]`) || nocachePolicy == benchPolicy {
		t.Fatal("the nocache policy does not read x-request-id")
	}
	rep, err := Run(context.Background(), tiny("reuse-nocache", "http-reuse"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 2 || rep.Scenarios[0].Scenario != "reuse-nocache" {
		t.Fatalf("scenarios: %+v", rep.Scenarios)
	}
	// http-reuse still runs on the memory server's HTTP listener, whose
	// policy is the cached one, next to the nocache server.
	for _, res := range rep.Scenarios {
		if res.Checks == 0 || res.Errors != 0 {
			t.Fatalf("%s: %d Checks, %d unexpected answers, first: %s", res.Scenario, res.Checks, res.Errors, res.FirstError)
		}
	}
}

// TestTarget measures another ext_authz server in tokenwise's place (here a
// second no-op server, so reuse's answers are the expected allows) and
// skips the scenarios only tokenwise can run.
func TestTarget(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, noop{})
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	opts := tiny("reuse", "one-time-redis", "http-reuse", "dpop")
	opts.Target = lis.Addr().String()
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Scenario != "reuse" || rep.Scenarios[0].Errors != 0 || rep.Scenarios[0].Checks == 0 {
		t.Fatalf("scenarios: %+v", rep.Scenarios)
	}
	for _, name := range []string{"one-time-redis", "http-reuse", "dpop"} {
		if rep.Skipped[name] == "" {
			t.Errorf("%s not skipped: %v", name, rep.Skipped)
		}
	}
}

// TestIssuerAddress serves the JWKS where --issuer-address says.
func TestIssuerAddress(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	e := &env{opts: &Options{IssuerAddress: addr}}
	defer e.close()
	url, err := e.startIssuer()
	if err != nil {
		t.Fatal(err)
	}
	if url != "http://"+addr {
		t.Fatalf("issuer at %s, want http://%s", url, addr)
	}
	resp, err := http.Get(url + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/jwks.json: %s", url, resp.Status)
	}
}
