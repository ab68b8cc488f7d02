package policy

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Header names a policy may not set or remove fail the decision, on allow
// and deny answers alike and in every header list.
func TestReservedHeaderNamesRefused(t *testing.T) {
	names := []string{":path", ":authority", "Host", "connection", "Transfer-Encoding", "upgrade", "te",
		"keep-alive", "proxy-connection", "content-length", "x(y)", "a/b", "x@y", "é", "a:b"}
	for _, name := range names {
		for _, term := range []string{
			`{"allowed": true, "headers": {"` + name + `": "v"}}`,
			`{"allowed": false, "headers": {"` + name + `": "v"}}`,
			`{"allowed": true, "request_headers_to_remove": ["` + name + `"]}`,
			`{"allowed": true, "response_headers_to_add": {"` + name + `": "v"}}`,
		} {
			if _, err := parseDecision(regoValue(t, term)); err == nil {
				t.Errorf("%s: accepted", term)
			}
		}
	}
	for _, ok := range []string{"x-user", "X-Custom_1", "www-authenticate", "a.b~c!#$%&'*+^`|"} {
		if _, err := parseDecision(regoValue(t, `{"allowed": true, "headers": {"`+strings.ReplaceAll(ok, "`", "`")+`": "v"}}`)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	// Query parameter names are not header names.
	if _, err := parseDecision(regoValue(t, `{"allowed": true, "query_parameters_to_remove": ["a:b", "host"]}`)); err != nil {
		t.Errorf("query names refused: %v", err)
	}
}

// slowPolicy loops for a long time without allocating much.
const slowPolicy = `package envoy.authz

default allow := false

allow if {
	input.parsed_path[0] == "slow"
	every i in numbers.range(1, 30000) {
		every j in numbers.range(1, 30000) {
			i != 0 - j
		}
	}
}

allow if input.parsed_path[0] == "fast"
`

// A policy that runs past policy.timeout is cancelled: an error (the
// caller's 500 deny), well before it would have finished.
func TestEvaluationDeadline(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.rego"), slowPolicy)
	cfg := policyConfig(dir)
	cfg.Timeout = 50 * time.Millisecond
	e := newEngine(t, cfg, Options{})
	if d, err := e.Decide(context.Background(), newRequest("GET", "/fast"), nil); err != nil || !d.Allowed {
		t.Fatalf("fast: %v %v", d, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Decide(context.Background(), newRequest("GET", "/slow"), nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a runaway policy decided")
		}
	case <-time.After(30 * time.Second): // a bound on the wait, not a timing assertion
		t.Fatal("the evaluation was not cancelled")
	}
	// The Check's own deadline bounds it too, when it comes first.
	cfg.Timeout = time.Hour
	e = newEngine(t, cfg, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.Decide(ctx, newRequest("GET", "/slow"), nil); err == nil {
		t.Fatal("a runaway policy decided past the Check's deadline")
	}
}

func TestBodyShapeLimits(t *testing.T) {
	limits := BodyLimits{MaxBytes: 1 << 20, MaxElements: 100, MaxDepth: 8}
	json := map[string]string{"content-type": "application/json"}
	form := map[string]string{"content-type": "application/x-www-form-urlencoded"}
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		tooMany bool
	}{
		{"small object", json, `{"a": [1, 2, {"b": "c"}]}`, false},
		{"depth 8", json, strings.Repeat("[", 8) + strings.Repeat("]", 8), false},
		{"depth 9", json, strings.Repeat("[", 9) + strings.Repeat("]", 9), true},
		{"brackets in strings do not count", json, `["` + strings.Repeat("[{,", 500) + `"]`, false},
		{"escaped quote", json, `["\"[[[[[[[[[[[["]`, false},
		{"100 values", json, "[" + strings.Repeat("1,", 98) + "1]", false},
		{"many values", json, "[" + strings.Repeat("1,", 200) + "1]", true},
		{"many empty arrays", json, "[" + strings.Repeat("[],", 60) + "[]]", true},
		{"many form fields", form, strings.Repeat("a=1&", 200), true},
		{"few form fields", form, "a=1&b=2", false},
	}
	for _, c := range cases {
		_, _, err := parseBody(context.Background(), c.headers, c.body, nil, limits)
		if got := errors.Is(err, ErrBodyTooComplex); got != c.tooMany {
			t.Errorf("%s: err = %v, want too complex: %v", c.name, err, c.tooMany)
		}
	}
	// The byte cap still truncates first.
	v, truncated, err := parseBody(context.Background(), json, "["+strings.Repeat("1,", 1000)+"1]", nil, BodyLimits{MaxBytes: 100, MaxElements: 10})
	if err != nil || !truncated || v.String() != "null" {
		t.Errorf("over the byte cap: %v %v %v", v, truncated, err)
	}
}

// No more bodies are parsed at once than the semaphore has slots; a Check
// waiting for one gives up at its deadline.
func TestBodyParsesAreBounded(t *testing.T) {
	limits := BodyLimits{MaxBytes: 1 << 20, MaxElements: 1 << 20, MaxDepth: 64, parses: make(chan struct{}, 2)}
	json := map[string]string{"content-type": "application/json"}
	body := "[" + strings.Repeat(`"abcdefgh",`, 20000) + `"x"]`
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := limits.acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			if _, _, err := parseBody(context.Background(), json, body, nil, BodyLimits{MaxBytes: 1 << 20}); err != nil {
				t.Error(err)
			}
			running.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d parses ran at once, want at most 2", p)
	}
	// Both slots taken: a Check whose deadline passes is refused, not queued forever.
	r1, _ := limits.acquire(context.Background())
	r2, _ := limits.acquire(context.Background())
	defer r1()
	defer r2()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := parseBody(ctx, json, body, nil, limits); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
}
