package policy

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tokenwise/tokenwise/authz/request"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/verify"
)

const objectPolicy = `package envoy.authz

default allow := {"allowed": false, "reason": "not public"}

allow := {"allowed": true, "headers": {"x-user": input.token.claims.sub}, "one_time_use": true} if {
	input.parsed_path[0] == "transfer"
	some scope in input.token.scopes
	scope == data.routes.transfer.scope
}

allow := {"allowed": true} if input.parsed_path[0] == "public"
`

const routesData = `{"transfer": {"scope": "pay"}}`

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func policyConfig(paths ...string) config.Policy {
	cfg := config.Default().Policy
	cfg.Paths = paths
	return cfg
}

func newRequest(method, path string) *request.Request {
	return &request.Request{Frontend: request.FrontendGRPC, Method: method, Path: path, Headers: map[string]string{}}
}

func newEngine(t *testing.T, cfg config.Policy, opts Options) *Engine {
	t.Helper()
	e, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// scrape returns the value of a metric line, "" when absent.
func scrape(t *testing.T, m *observe.Metrics, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	if s := re.FindStringSubmatch(string(body)); s != nil {
		return s[1]
	}
	return ""
}

func TestDecideObjectWithDataByDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "authz.rego"), objectPolicy)
	// Data is placed by directory, as `opa run` places it: routes/data.json → data.routes.
	writeFile(t, filepath.Join(dir, "routes", "data.json"), routesData)
	e := newEngine(t, policyConfig(dir+"/"), Options{})
	ctx := context.Background()

	tok := &verify.Token{Issuer: "corp", Claims: map[string]any{"sub": "alice"}, Scopes: []string{"pay"}}
	d, err := e.Decide(ctx, newRequest("POST", "/transfer?x=1"), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.MaxUses != 1 || len(d.Headers) != 1 || d.Headers[0] != (Header{"x-user", "alice"}) {
		t.Errorf("transfer with scope: %+v", d)
	}
	d, err = e.Decide(ctx, newRequest("POST", "/transfer"), nil)
	if err != nil || d.Allowed || d.Reason != "not public" {
		t.Errorf("transfer without token: %+v %v", d, err)
	}
	d, err = e.Decide(ctx, newRequest("GET", "/public/x"), nil)
	if err != nil || !d.Allowed || d.MaxUses != 0 {
		t.Errorf("public: %+v %v", d, err)
	}
}

func TestDecideBooleanAndCustomQuery(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.rego"), "package my.gate\n\nok if input.attributes.request.http.method == \"GET\"\n")
	cfg := policyConfig(filepath.Join(dir, "p.rego"))
	cfg.Query = "data.my.gate.ok"
	e := newEngine(t, cfg, Options{})
	ctx := context.Background()
	if d, err := e.Decide(ctx, newRequest("GET", "/"), nil); err != nil || !d.Allowed {
		t.Errorf("GET: %+v %v", d, err)
	}
	// No default: the boolean rule is undefined for POST, which is an error, not a quiet allow or deny.
	if _, err := e.Decide(ctx, newRequest("POST", "/"), nil); err == nil || err.Error() != "policy decision is undefined" {
		t.Errorf("POST: error %v, want undefined", err)
	}
}

func TestDecideErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.rego"), `package envoy.authz

allow := true if input.parsed_path[0] == "a"
allow := false if input.parsed_path[0] == "a"
allow := {"allowed": "yes"} if input.parsed_path[0] == "bad"
`)
	e := newEngine(t, policyConfig(dir), Options{})
	ctx := context.Background()
	for path, want := range map[string]string{
		"/a":    "policy evaluation",   // conflicting values: an evaluation error
		"/bad":  "allowed is a string", // malformed decision
		"/none": "policy decision is undefined",
		"/%zz":  "policy input", // the input cannot be built
	} {
		if _, err := e.Decide(ctx, newRequest("GET", path), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", path, err, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok.rego"), "package envoy.authz\n\nallow := true\n")
	writeFile(t, filepath.Join(dir, "broken.rego"), "package envoy.authz\n\nallow if {\n")
	_, err := New(context.Background(), policyConfig(dir), Options{})
	if err == nil || !strings.Contains(err.Error(), "broken.rego:") || strings.Contains(err.Error(), "\n") {
		t.Errorf("parse error: %v; want one line naming broken.rego", err)
	}

	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "a.rego"), "package envoy.authz\n\nallow := x\n")
	_, err = New(context.Background(), policyConfig(dir), Options{})
	if err == nil || !strings.Contains(err.Error(), "a.rego:3: rego_unsafe_var_error") {
		t.Errorf("compile error: %v; want it to name a.rego:3", err)
	}

	_, err = New(context.Background(), policyConfig(t.TempDir()), Options{})
	if err == nil || !strings.Contains(err.Error(), "no .rego files") {
		t.Errorf("empty dir: %v", err)
	}
	_, err = New(context.Background(), policyConfig(filepath.Join(dir, "missing")), Options{})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing path: %v", err)
	}
}

func TestLoadSkipsTestsAndHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "authz.rego"), "package envoy.authz\n\nallow := true\n")
	// Neither is part of the served policy; both would fail to compile.
	writeFile(t, filepath.Join(dir, "authz_test.rego"), "package envoy.authz_test\n\ntest_x if {\n")
	writeFile(t, filepath.Join(dir, ".old", "authz.rego"), "package envoy.authz\n\nallow := false\n")
	e := newEngine(t, policyConfig(dir), Options{})
	if d, err := e.Decide(context.Background(), newRequest("GET", "/"), nil); err != nil || !d.Allowed {
		t.Errorf("%+v %v", d, err)
	}
}

func TestFSOption(t *testing.T) {
	fsys := fstest.MapFS{
		"bundle/authz.rego":         {Data: []byte(objectPolicy)},
		"bundle/routes/data.json":   {Data: []byte(routesData)},
		"bundle/authz_test.rego":    {Data: []byte("broken {")},
		"elsewhere/not-loaded.rego": {Data: []byte("broken {")},
	}
	m := observe.NewMetrics()
	e := newEngine(t, policyConfig("bundle/"), Options{FS: fsys, Metrics: m})
	tok := &verify.Token{Claims: map[string]any{"sub": "bob"}, Scopes: []string{"pay"}}
	d, err := e.Decide(context.Background(), newRequest("POST", "/transfer"), tok)
	if err != nil || !d.Allowed || d.MaxUses != 1 {
		t.Errorf("%+v %v", d, err)
	}
	if got := scrape(t, m, `tokenwise_policy_reloads_total{result="success"}`); got != "1" {
		t.Errorf("loads counted: %q, want 1", got)
	}
	// Nothing to watch: Watch returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Watch(ctx); err != nil || ctx.Err() != nil {
		t.Errorf("Watch with FS: %v (ctx %v)", err, ctx.Err())
	}
}

func TestReloadGoodAndBroken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "authz.rego")
	writeFile(t, file, "package envoy.authz\n\nallow := false\n")
	m := observe.NewMetrics()
	e := newEngine(t, policyConfig(dir), Options{Metrics: m})
	ctx := context.Background()

	writeFile(t, file, "package envoy.authz\n\nallow := true\n")
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(ctx, newRequest("GET", "/"), nil); !d.Allowed {
		t.Error("reload did not take the new policy")
	}
	writeFile(t, file, "package envoy.authz\n\nallow := \n")
	if err := e.Reload(ctx); err == nil || !strings.Contains(err.Error(), "authz.rego:") {
		t.Errorf("broken reload: %v", err)
	}
	if d, err := e.Decide(ctx, newRequest("GET", "/"), nil); err != nil || !d.Allowed {
		t.Errorf("after a broken reload the running policy must stay: %+v %v", d, err)
	}
	if got := scrape(t, m, `tokenwise_policy_reloads_total{result="success"}`); got != "2" {
		t.Errorf("successes %q, want 2 (load and reload)", got)
	}
	if got := scrape(t, m, `tokenwise_policy_reloads_total{result="failure"}`); got != "1" {
		t.Errorf("failures %q, want 1", got)
	}
}

// waitFor polls cond for a few seconds: it waits for fsnotify, it does not
// measure it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "authz.rego"), "package envoy.authz\n\nallow := data.flag\n")
	writeFile(t, filepath.Join(dir, "data.json"), `{"flag": false}`)
	m := observe.NewMetrics()
	e := newEngine(t, policyConfig(dir), Options{Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	allowed := func() bool {
		d, err := e.Decide(context.Background(), newRequest("GET", "/"), nil)
		return err == nil && d.Allowed
	}

	// Watch has no ready signal: rewrite now and then (slower than the
	// debounce, which each write restarts) until the change is seen.
	var last time.Time
	waitFor(t, "a data change to be loaded", func() bool {
		if time.Since(last) > time.Second {
			writeFile(t, filepath.Join(dir, "data.json"), `{"flag": true}`)
			last = time.Now()
		}
		return allowed()
	})

	// A new file in a new directory is loaded too.
	writeFile(t, filepath.Join(dir, "sub", "deny.rego"), "package envoy.authz\n\ndefault deny := false\n")
	waitFor(t, "a new file to be loaded", func() bool {
		return scrape(t, m, `tokenwise_policy_reloads_total{result="success"}`) == "3"
	})

	// A broken file is refused; the running policy stays.
	writeFile(t, filepath.Join(dir, "authz.rego"), "package envoy.authz\n\nallow := {\n")
	waitFor(t, "the broken file to be refused", func() bool {
		return scrape(t, m, `tokenwise_policy_reloads_total{result="failure"}`) != ""
	})
	if !allowed() {
		t.Error("a broken file replaced the running policy")
	}

	// Fixed by an atomic save (write elsewhere, rename over): loaded.
	tmp := filepath.Join(t.TempDir(), "authz.rego")
	writeFile(t, tmp, "package envoy.authz\n\nallow := false\n")
	if err := os.Rename(tmp, filepath.Join(dir, "authz.rego")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fixed file to be loaded", func() bool { return !allowed() })
}

func TestConcurrentDecideAndReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "authz.rego"), objectPolicy)
	writeFile(t, filepath.Join(dir, "routes", "data.json"), routesData)
	e := newEngine(t, policyConfig(dir), Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if d, err := e.Decide(ctx, newRequest("GET", "/public"), nil); err != nil || !d.Allowed {
					t.Errorf("worker %d: %+v %v", i, d, err)
					return
				}
			}
		}()
	}
	for i := range 5 {
		writeFile(t, filepath.Join(dir, "extra.rego"), "package extra\n\nx := "+string(rune('0'+i))+"\n")
		if err := e.Reload(ctx); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

func TestWarnsWhenNothingDefinesTheQuery(t *testing.T) {
	logged := func(policy, data string) string {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "p.rego"), policy)
		if data != "" {
			writeFile(t, filepath.Join(dir, "data.json"), data)
		}
		var buf strings.Builder
		newEngine(t, policyConfig(dir), Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		return buf.String()
	}
	if out := logged("package other\n\nallow := true\n", ""); !strings.Contains(out, "no rule or data defines the policy query") {
		t.Errorf("no warning for a query nothing defines:\n%s", out)
	}
	for _, c := range []struct{ policy, data string }{
		{"package envoy.authz\n\nallow := true\n", ""},
		{"package envoy\n\nauthz := {\"allow\": true}\n", ""},
		{"package other\n\nx := 1\n", `{"envoy": {"authz": {"allow": true}}}`},
	} {
		if out := logged(c.policy, c.data); strings.Contains(out, "no rule") {
			t.Errorf("warning for a defined query (%q %q):\n%s", c.policy, c.data, out)
		}
	}
}
