package introspect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/authz/config"
)

// endpoint is an RFC 7662 introspection endpoint over real HTTP: it counts
// calls, records each call's client authentication, and answers from a
// table of tokens, or fails as told.
type endpoint struct {
	t     *testing.T
	srv   *httptest.Server
	calls atomic.Int64

	mu      sync.Mutex
	answers map[string]map[string]any // token → answer; unknown tokens are inactive
	last    call
	fail    func(w http.ResponseWriter) bool // when set and it returns true, the request is answered by it
	gate    chan struct{}                    // when set, requests wait for it to close
}

// call is what one request carried.
type call struct {
	method, contentType, authorization string
	form                               url.Values
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{t: t, answers: map[string]map[string]any{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	_ = r.ParseForm()
	e.mu.Lock()
	e.last = call{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.PostForm}
	answer, ok := e.answers[r.PostForm.Get("token")]
	fail, gate := e.fail, e.gate
	e.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if fail != nil && fail(w) {
		return
	}
	if !ok {
		answer = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

func (e *endpoint) url() string { return e.srv.URL + "/introspect" }

func (e *endpoint) set(token string, answer map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answers[token] = answer
}

func (e *endpoint) setFail(f func(w http.ResponseWriter) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fail = f
}

func (e *endpoint) lastCall() call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// clock is a settable clock for cache expiry.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Now().UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *clock) advance(d time.Duration) { c.now.Add(int64(d)) }

func newClient(t *testing.T, cfg config.Introspection, clk *clock) *Client {
	t.Helper()
	opts := Options{Name: "idp"}
	if clk != nil {
		opts.Now = clk.Now
	}
	c, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func basicCfg(e *endpoint) config.Introspection {
	return config.Introspection{URL: e.url(), Auth: config.AuthClientSecretBasic, ClientID: "tokenwise", ClientSecret: "s3cret"}
}

func active(extra map[string]any) map[string]any {
	a := map[string]any{"active": true, "sub": "alice", "scope": "orders:read", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func mustIntrospect(t *testing.T, c *Client, token string) *Answer {
	t.Helper()
	a, err := c.Introspect(context.Background(), token)
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	return a
}

func wantCalls(t *testing.T, e *endpoint, want int64) {
	t.Helper()
	if got := e.calls.Load(); got != want {
		t.Fatalf("endpoint called %d times, want %d", got, want)
	}
}

func TestRequestShape(t *testing.T) {
	e := newEndpoint(t)
	e.set("tok-1", active(nil))
	a := mustIntrospect(t, newClient(t, basicCfg(e), nil), "tok-1")
	if !a.Active || a.Claims["sub"] != "alice" {
		t.Fatalf("answer = %+v", a)
	}
	if _, ok := a.Claims["active"]; ok {
		t.Error("claims keep active")
	}
	if _, ok := a.Claims["exp"].(json.Number); !ok {
		t.Errorf("exp is %T, want json.Number", a.Claims["exp"])
	}
	c := e.lastCall()
	if c.method != http.MethodPost || c.contentType != "application/x-www-form-urlencoded" {
		t.Errorf("request %s %q", c.method, c.contentType)
	}
	if c.form.Get("token") != "tok-1" || c.form.Get("token_type_hint") != "access_token" {
		t.Errorf("form = %v", c.form)
	}
}

func TestClientAuthentication(t *testing.T) {
	// Characters that RFC 6749 §2.3.1's form-urlencoding changes: a ':' in
	// the id would split it from the secret if sent raw.
	const id, secret = "tokenwise:gw 1", "p@ss:w%rd+/é&="
	cases := []struct {
		auth           string
		wantAuthz      string
		wantID, wantSc string
	}{
		{config.AuthClientSecretBasic, "Basic " + base64.StdEncoding.EncodeToString([]byte(
			"tokenwise%3Agw+1:p%40ss%3Aw%25rd%2B%2F%C3%A9%26%3D")), "", ""},
		{config.AuthClientSecretPost, "", id, secret},
		{config.AuthBearer, "Bearer " + secret, "", ""},
		{config.AuthNone, "", id, ""},
	}
	for _, tc := range cases {
		t.Run(tc.auth, func(t *testing.T) {
			e := newEndpoint(t)
			e.set("tok", active(nil))
			cfg := config.Introspection{URL: e.url(), Auth: tc.auth, ClientID: id, ClientSecret: secret}
			mustIntrospect(t, newClient(t, cfg, nil), "tok")
			c := e.lastCall()
			if c.authorization != tc.wantAuthz {
				t.Errorf("Authorization = %q, want %q", c.authorization, tc.wantAuthz)
			}
			if c.form.Get("client_id") != tc.wantID || c.form.Get("client_secret") != tc.wantSc {
				t.Errorf("form client_id=%q client_secret=%q, want %q %q", c.form.Get("client_id"), c.form.Get("client_secret"), tc.wantID, tc.wantSc)
			}
			if c.form.Get("token") != "tok" {
				t.Errorf("token = %q", c.form.Get("token"))
			}
		})
	}
	// The basic credentials decode back to id and secret as a server following the RFC does.
	e := newEndpoint(t)
	e.set("tok", active(nil))
	mustIntrospect(t, newClient(t, config.Introspection{URL: e.url(), Auth: config.AuthClientSecretBasic, ClientID: id, ClientSecret: secret}, nil), "tok")
	req := &http.Request{Header: http.Header{"Authorization": {e.lastCall().authorization}}}
	u, p, _ := req.BasicAuth()
	gotID, _ := url.QueryUnescape(u)
	gotSecret, _ := url.QueryUnescape(p)
	if gotID != id || gotSecret != secret {
		t.Errorf("decoded %q %q, want %q %q", gotID, gotSecret, id, secret)
	}
}

func TestSingleFlight(t *testing.T) {
	e := newEndpoint(t)
	e.set("tok", active(nil))
	gate := make(chan struct{})
	e.gate = gate
	c := newClient(t, basicCfg(e), nil)
	const n = 50
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			started.Done()
			_, err := c.Introspect(context.Background(), "tok")
			errs <- err
		}()
	}
	started.Wait()
	// Let the first request in: every call either joins it or, arriving
	// after it ended, finds its answer cached.
	eventually(t, func() bool { return e.calls.Load() >= 1 })
	close(gate)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantCalls(t, e, 1)
}

func TestSingleFlightAtExpiry(t *testing.T) {
	e := newEndpoint(t)
	e.set("tok", active(nil))
	clk := newClock()
	cfg := basicCfg(e)
	cfg.CacheTTL = time.Minute
	c := newClient(t, cfg, clk)
	mustIntrospect(t, c, "tok")
	clk.advance(time.Minute + time.Second)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { mustIntrospectNoFatal(c, "tok") })
	}
	wg.Wait()
	wantCalls(t, e, 2)
}

// mustIntrospectNoFatal is for goroutines, which may not call t.Fatal.
func mustIntrospectNoFatal(c *Client, token string) {
	if _, err := c.Introspect(context.Background(), token); err != nil {
		panic(err)
	}
}

func TestActiveCachedForTTL(t *testing.T) {
	e := newEndpoint(t)
	e.set("tok", active(map[string]any{"exp": time.Now().Add(time.Hour).Unix()}))
	clk := newClock()
	cfg := basicCfg(e)
	cfg.CacheTTL = 2 * time.Minute
	c := newClient(t, cfg, clk)
	mustIntrospect(t, c, "tok")
	clk.advance(time.Minute)
	mustIntrospect(t, c, "tok")
	wantCalls(t, e, 1)
	clk.advance(time.Minute + time.Second)
	mustIntrospect(t, c, "tok")
	wantCalls(t, e, 2)
}

func TestActiveNeverCachedPastExp(t *testing.T) {
	e := newEndpoint(t)
	clk := newClock()
	exp := clk.Now().Add(30 * time.Second)
	e.set("tok", active(map[string]any{"exp": exp.Unix()}))
	cfg := basicCfg(e)
	cfg.CacheTTL = 10 * time.Minute
	c := newClient(t, cfg, clk)
	a := mustIntrospect(t, c, "tok")
	if !a.Expiry.Equal(time.Unix(exp.Unix(), 0)) {
		t.Errorf("Expiry = %v, want %v", a.Expiry, exp)
	}
	clk.advance(29 * time.Second)
	mustIntrospect(t, c, "tok")
	wantCalls(t, e, 1)
	clk.advance(2 * time.Second) // past exp, far inside cache_ttl
	mustIntrospect(t, c, "tok")
	wantCalls(t, e, 2)

	// An answer already past its exp is not cached at all.
	e.set("old", active(map[string]any{"exp": clk.Now().Add(-time.Second).Unix()}))
	mustIntrospect(t, c, "old")
	mustIntrospect(t, c, "old")
	wantCalls(t, e, 4)

	// Nor one whose exp is not a number: its end is unknown.
	e.set("odd", active(map[string]any{"exp": "tomorrow"}))
	mustIntrospect(t, c, "odd")
	mustIntrospect(t, c, "odd")
	wantCalls(t, e, 6)
}

func TestNegativeCaching(t *testing.T) {
	e := newEndpoint(t)
	clk := newClock()
	cfg := basicCfg(e)
	cfg.NegativeCacheTTL = 10 * time.Second
	c := newClient(t, cfg, clk)
	if a := mustIntrospect(t, c, "unknown"); a.Active {
		t.Fatal("unknown token active")
	}
	clk.advance(9 * time.Second)
	mustIntrospect(t, c, "unknown")
	wantCalls(t, e, 1)
	clk.advance(2 * time.Second)
	mustIntrospect(t, c, "unknown")
	wantCalls(t, e, 2)
}

func TestFailuresAreUnavailableAndNotCached(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter) bool{
		"status 500": func(w http.ResponseWriter) bool { w.WriteHeader(500); return true },
		"status 401": func(w http.ResponseWriter) bool { w.WriteHeader(401); return true },
		"not JSON":   func(w http.ResponseWriter) bool { fmt.Fprint(w, "<html>oops</html>"); return true },
		"JSON array": func(w http.ResponseWriter) bool { fmt.Fprint(w, `[{"active":true}]`); return true },
		"no active":  func(w http.ResponseWriter) bool { fmt.Fprint(w, `{"sub":"alice"}`); return true },
		"active not a boolean": func(w http.ResponseWriter) bool {
			fmt.Fprint(w, `{"active":"true","sub":"alice"}`)
			return true
		},
		"trailing data": func(w http.ResponseWriter) bool { fmt.Fprint(w, `{"active":true}{"active":false}`); return true },
		"too large": func(w http.ResponseWriter) bool {
			fmt.Fprintf(w, `{"active":true,"pad":%q}`, strings.Repeat("x", MaxAnswerBytes))
			return true
		},
	}
	for name, fail := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEndpoint(t)
			e.set("tok-secret-value", active(nil))
			e.setFail(fail)
			c := newClient(t, basicCfg(e), nil)
			wantUnavailable(t, c, "tok-secret-value")
			wantUnavailable(t, c, "tok-secret-value")
			wantCalls(t, e, 2) // the failure was not cached
			e.setFail(nil)
			if a := mustIntrospect(t, c, "tok-secret-value"); !a.Active {
				t.Fatal("not active once the endpoint recovered")
			}
			wantCalls(t, e, 3)
		})
	}
}

func TestSlowEndpointTimesOut(t *testing.T) {
	e := newEndpoint(t)
	e.set("slow-token-value", active(nil))
	e.gate = make(chan struct{}) // never opened: the endpoint never answers
	cfg := basicCfg(e)
	cfg.Timeout = 50 * time.Millisecond
	c := newClient(t, cfg, nil)
	wantUnavailable(t, c, "slow-token-value")
	wantUnavailable(t, c, "slow-token-value")
	wantCalls(t, e, 2)
}

func TestEndpointDown(t *testing.T) {
	e := newEndpoint(t)
	c := newClient(t, basicCfg(e), nil)
	e.srv.Close()
	wantUnavailable(t, c, "down-token-value")
}

func TestCallerDeadlineDoesNotFailTheFlight(t *testing.T) {
	e := newEndpoint(t)
	e.set("tok", active(nil))
	gate := make(chan struct{})
	e.gate = gate
	c := newClient(t, basicCfg(e), nil)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Introspect(ctx, "tok"); first <- err }()
	eventually(t, func() bool { return e.calls.Load() == 1 })
	second := make(chan error, 1)
	go func() { _, err := c.Introspect(context.Background(), "tok"); second <- err }()
	cancel()
	if err := <-first; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("canceled caller: %v", err)
	}
	close(gate)
	if err := <-second; err != nil {
		t.Fatalf("the other caller failed with the first: %v", err)
	}
	wantCalls(t, e, 1)
}

func wantUnavailable(t *testing.T, c *Client, token string) {
	t.Helper()
	_, err := c.Introspect(context.Background(), token)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if len(token) > 8 && strings.Contains(err.Error(), token) {
		t.Fatalf("error carries the token: %v", err)
	}
}

func TestRedirects(t *testing.T) {
	e := newEndpoint(t)
	e.set("tok", active(nil))
	redirect := func(code int, to string) *httptest.Server {
		s := httptest.NewServer(http.RedirectHandler(to, code))
		t.Cleanup(s.Close)
		return s
	}
	// A 307 to loopback http keeps the POST and is followed.
	ok := redirect(http.StatusTemporaryRedirect, e.url())
	c := newClient(t, config.Introspection{URL: ok.URL, Auth: config.AuthNone}, nil)
	mustIntrospect(t, c, "tok")
	wantCalls(t, e, 1)

	for name, s := range map[string]*httptest.Server{
		"to plain http off loopback":  redirect(http.StatusTemporaryRedirect, "http://idp.example.com/introspect"),
		"turning the POST into a GET": redirect(http.StatusFound, e.url()),
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, config.Introspection{URL: s.URL, Auth: config.AuthNone}, nil)
			wantUnavailable(t, c, "redirected-token-value")
		})
	}
	wantCalls(t, e, 1)

	// Too many hops.
	loop := httptest.NewServer(nil)
	loop.Config.Handler = http.RedirectHandler(loop.URL+"/again", http.StatusTemporaryRedirect)
	t.Cleanup(loop.Close)
	wantUnavailable(t, newClient(t, config.Introspection{URL: loop.URL, Auth: config.AuthNone}, nil), "looping-token-value")
}

func TestURLRule(t *testing.T) {
	for _, u := range []string{"http://idp.example.com/introspect", "ftp://127.0.0.1/x", "/relative"} {
		if _, err := New(config.Introspection{URL: u}, Options{}); err == nil {
			t.Errorf("New accepted %q", u)
		}
	}
	if _, err := New(config.Introspection{}, Options{}); err == nil {
		t.Error("New accepted no url and no discovery")
	}
	// A discovered URL meets the same rule.
	c, err := New(config.Introspection{Auth: config.AuthNone}, Options{Endpoint: func(context.Context) (string, error) {
		return "http://idp.example.com/introspect", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, c, "discovered-token-value")
	// And a good one is used.
	e := newEndpoint(t)
	e.set("tok", active(nil))
	c, err = New(config.Introspection{Auth: config.AuthNone}, Options{Endpoint: func(context.Context) (string, error) { return e.url(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	mustIntrospect(t, c, "tok")
}

func TestCacheBounded(t *testing.T) {
	e := newEndpoint(t)
	c, err := New(basicCfg(e), Options{CacheSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		mustIntrospect(t, c, fmt.Sprintf("tok-%d", i))
	}
	if n := c.cache.len(); n > 32 || n == 0 {
		t.Fatalf("cache holds %d answers, want 1..32", n)
	}
	// The cache keys are hashes: no token is kept.
	for i := range c.cache.shards {
		for k := range c.cache.shards[i].entries {
			if strings.HasPrefix(string(k[:]), "tok-") {
				t.Fatal("a cache key is the token")
			}
		}
	}
}

func TestNoCache(t *testing.T) {
	e := newEndpoint(t)
	e.set("tok", active(nil))
	c, err := New(basicCfg(e), Options{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustIntrospect(t, c, "tok")
	mustIntrospect(t, c, "tok")
	wantCalls(t, e, 2)
}

func TestDerived(t *testing.T) {
	a := &Answer{}
	n := 0
	build := func(keep bool) func() (any, bool) { return func() (any, bool) { n++; return n, keep } }
	a.Derived(build(false))
	a.Derived(build(false))
	if n != 2 {
		t.Fatalf("an unkept value was reused")
	}
	a.Derived(build(true))
	if v := a.Derived(build(true)); v != 3 || n != 3 {
		t.Fatalf("kept value = %v after %d builds", v, n)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
