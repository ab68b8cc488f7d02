package e2e

// The second hardening pass (issue 10), each class proved through the real
// gRPC listener: token spellings, stripping, logs, bodies, message size,
// policy header names, key redirects, tracing, readiness, empty jti,
// evaluation deadlines and the bundled policies.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// goodToken is a token for alice that the harness policy allows on /orders.
func (h *harness) goodToken(claims map[string]any) string {
	all := map[string]any{"sub": "alice", "aud": "orders-api", "scope": "orders:read"}
	for k, v := range claims {
		all[k] = v
	}
	return h.issuer.Mint(all)
}

// Item 1: every spelling of a token the upstream could read is the one
// verified, or the request is refused.
func TestEveryTokenSpellingIsVerifiedOrRefused(t *testing.T) {
	h := start(t, func(c *config.Config) { c.Token.Cookie = "tw" })
	h.waitReady()
	good := h.goodToken(nil)
	other := h.goodToken(map[string]any{"sub": "mallory"})
	cases := []struct {
		name   string
		req    *authv3.CheckRequest
		status int // 0: allowed
		err    string
	}{
		{"second token behind a malformed cookie pair", envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Bearer " + good, "cookie": "tw=" + other + "; junk"}), 400, "invalid_request"},
		{"second token after a stray quote", envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Bearer " + good, "cookie": `a="b; tw=` + other}), 400, "invalid_request"},
		{"second token after a nameless pair", envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Bearer " + good, "cookie": "=x; tw=" + other + ";"}), 400, "invalid_request"},
		{"token cookie after a malformed pair is found", envoyRequest("GET", "/orders/1", map[string]string{"cookie": "junk; tw=" + good}), 0, ""},
		{"Bearer and a tab", envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Bearer\t" + good}), 0, ""},
		{"Bearer, a tab and a bad token", envoyRequest("GET", "/public/x", map[string]string{"authorization": "Bearer\tnot-a-jwt"}), 401, "invalid_token"},
		{"Bearer with nothing after it", envoyRequest("GET", "/public/x", map[string]string{"authorization": "Bearer "}), 401, "invalid_token"},
		{"bare Bearer", envoyRequest("GET", "/public/x", map[string]string{"authorization": "Bearer"}), 401, "invalid_token"},
		{"malformed Bearer", envoyRequest("GET", "/public/x", map[string]string{"authorization": "Bearer a b"}), 401, "invalid_token"},
		{"empty DPoP", envoyRequest("GET", "/public/x", map[string]string{"authorization": "DPoP "}), 401, "invalid_token"},
		{"header_map: Basic and Bearer lines", rawHeaderRequest("GET", "/orders/1", "authorization", "Basic dTpw", "Authorization", "Bearer "+good), 400, "invalid_request"},
		{"headers: Basic and Bearer joined", envoyRequest("GET", "/orders/1", map[string]string{"authorization": "Basic dTpw, Bearer " + good}), 400, "invalid_request"},
		{"header_map: two cookie lines with tokens", rawHeaderRequest("GET", "/orders/1", "authorization", "Bearer "+good, "cookie", "a=b", "cookie", "tw="+other), 400, "invalid_request"},
		{"header_map: token cookie line", rawHeaderRequest("GET", "/orders/1", "cookie", "x=1", "cookie", "junk; tw="+good), 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := read(h.check(c.req))
			if c.status == 0 {
				if !a.allowed || a.headers["x-user-id"] != "alice" {
					t.Fatalf("want the verified token allowed; got %+v", a)
				}
				return
			}
			if a.allowed || a.status != c.status || a.errorField() != c.err {
				t.Fatalf("got allowed=%v status %d error %q; want %d %s", a.allowed, a.status, a.errorField(), c.status, c.err)
			}
		})
	}
}

// Item 2: remove_authorization strips the token wherever it was found.
func TestRemoveAuthorizationStripsTheTokenWhereverFound(t *testing.T) {
	h := start(t, func(c *config.Config) {
		c.Forward.RemoveAuthorization = true
		c.Token.Cookie = "tw"
		c.Token.QueryParameter = "access_token"
	})
	h.waitReady()
	good := h.goodToken(nil)

	a := read(h.check(envoyRequest("GET", "/orders/1", map[string]string{"cookie": "a=1; tw=" + good + "; b=2"})))
	if !a.allowed || a.headers["cookie"] != "a=1; b=2" || a.appended["cookie"] || contains(a.removed, "authorization") {
		t.Errorf("token cookie: upstream cookie %q (appended %v), removed %v", a.headers["cookie"], a.appended["cookie"], a.removed)
	}
	a = read(h.check(envoyRequest("GET", "/orders/1", map[string]string{"cookie": "tw=" + good})))
	if !a.allowed || !contains(a.removed, "cookie") || a.headers["cookie"] != "" {
		t.Errorf("only the token cookie: removed %v, cookie %q", a.removed, a.headers["cookie"])
	}
	resp := h.check(envoyRequest("GET", "/orders/1?x=1&access_token="+good, nil))
	if q := resp.GetOkResponse().GetQueryParametersToRemove(); !slices.Contains(q, "access_token") {
		t.Errorf("query token: query_parameters_to_remove %v", q)
	}
	a = read(h.check(envoyRequest("GET", "/orders/1", bearer(good))))
	if !a.allowed || !contains(a.removed, "authorization") {
		t.Errorf("header token: removed %v", a.removed)
	}
	// A spelling Envoy could not remove by name is refused instead.
	if a := read(h.check(envoyRequest("GET", "/orders/1?x=1;access_token="+good, nil))); a.allowed || a.status != 400 {
		t.Errorf("irremovable query token: %+v", a)
	}
}

// decisions are the decision-log lines written so far.
func (h *harness) decisions() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "decision" {
			out = append(out, m)
		}
	}
	return out
}

// printPolicy prints its whole input, as a debugging policy author might.
const printPolicy = `package envoy.authz

allow if {
	print(input)
	input.parsed_path[0] == "public"
}
`

// Item 3: no token in any output.
func TestNoTokenReachesTheLog(t *testing.T) {
	h := startPolicy(t, printPolicy, func(c *config.Config) { c.Token.QueryParameter = "tok" })
	h.waitReady()
	token := h.goodToken(nil)
	paths := []string{
		"/public/a?access_token=" + token,
		"/public/a?x=1;access_token=" + token,
		"/public/a?access%5Ftoken=" + token,
		"/public/a?ACCESS_TOKEN=" + token,
		"/public/a?x=1&TOK=" + token,
		"/public/a?t%6Fk=" + token,
	}
	for _, p := range paths {
		h.check(envoyRequest("GET", p, nil))
	}
	const proof = "eyJ0eXAiOiJkcG9wK2p3dCJ9.cHJvb2Y.c2ln"
	h.check(envoyRequest("GET", "/public/a", map[string]string{"dpop": proof, "cookie": "tw=cookie-secret-value"}))
	lines := h.decisions()
	if len(lines) != len(paths)+1 {
		t.Fatalf("%d decision lines", len(lines))
	}
	for i := range paths {
		if p, _ := lines[i]["path"].(string); strings.Contains(p, token) || !strings.Contains(p, "REDACTED") {
			t.Errorf("logged path %q", p)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "policy print") {
		t.Fatal("the policy's print output is not logged (debug level); the test proves nothing")
	}
	for _, secret := range []string{token, proof, "cookie-secret-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log carries a secret %.12q…", secret)
		}
	}

	// unknown_issuer names the unverified iss, escaped, so a trailing-slash
	// mismatch is visible.
	stranger := h.issuer.Mint(map[string]any{"sub": "alice", "aud": "orders-api", "iss": h.issuer.URL() + "/"})
	if a := read(h.check(envoyRequest("GET", "/public/a", bearer(stranger)))); a.status != 401 {
		t.Fatalf("unknown issuer: %+v", a)
	}
	last := h.decisions()[len(paths)+1]
	if last["reason"] != "unknown_issuer" || last["detail"] != `iss "`+h.issuer.URL()+`/"` {
		t.Errorf("unknown issuer logged as %v / %v", last["reason"], last["detail"])
	}
}

// bodyPolicy reads the parsed body.
const bodyPolicy = `package envoy.authz

default allow := false

allow if input.parsed_body.ok == true
`

// Item 4: hostile bodies cost bounded memory, and too complex a body is a
// 413 deny. Forty concurrent 1 MiB JSON bodies through the real server keep
// the process's peak heap under 300 MB (sampled every 2 ms; an earlier build
// took 70-100 MB per body).
func TestHostileBodiesCostBoundedMemory(t *testing.T) {
	h := startPolicy(t, bodyPolicy)
	h.waitReady()
	if a := read(h.check(withBody(envoyRequest("POST", "/x", nil), `{"ok": true}`))); !a.allowed {
		t.Fatalf("a small body was not parsed: %+v", a)
	}
	array := "[" + strings.Repeat("1,", 500_000) + "1]"          // 1 MB, a million values
	objects := "[" + strings.Repeat(`{"a":[1]},`, 99_000) + "1]" // 1 MB of small objects
	for _, body := range []string{array, objects} {
		if a := read(h.check(withBody(envoyRequest("POST", "/x", nil), body))); a.allowed || a.status != 413 {
			t.Fatalf("a %d-byte body of many values: %+v, want 413", len(body), a)
		}
	}
	// Bodies just under the element limit are parsed, concurrently.
	under := `{"ok": true, "items": [` + strings.Repeat(`"abcdefghijklmnopqrs",`, 45_000) + `"x"]}`
	reqs := []*authv3.CheckRequest{
		withBody(envoyRequest("POST", "/x", nil), array),
		withBody(envoyRequest("POST", "/x", nil), objects),
		withBody(envoyRequest("POST", "/x", nil), under),
	}
	runtime.GC()
	peak := sampleHeap(t, func() {
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := reqs[i%len(reqs)]
				a := read(h.check(req))
				if want := req == reqs[2]; a.allowed != want {
					t.Errorf("body %d: allowed %v", i%len(reqs), a.allowed)
				}
			}()
		}
		wg.Wait()
	})
	t.Logf("peak heap in use: %d MB", peak>>20)
	if peak > 300<<20 {
		t.Fatalf("peak heap %d MB over 300 MB", peak>>20)
	}
}

// sampleHeap runs f and returns the largest HeapInuse seen while it ran.
func sampleHeap(t *testing.T, f func()) uint64 {
	t.Helper()
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-stop:
				sample()
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak
}

// Item 5: a CheckRequest over grpc-go's default 4 MiB limit is answered
// with a deny, not a gRPC error that failure_mode_allow would let through.
func TestALargeCheckRequestIsADeny(t *testing.T) {
	h := startPolicy(t, "package envoy.authz\n\nallow := true\n")
	h.waitReady()
	req := withBody(envoyRequest("POST", "/x", nil), `{"a": "`+strings.Repeat("x", 5<<20)+`"}`)
	a := read(h.check(req)) // fails the test on a gRPC error
	// The body is over policy.max_body_bytes, so it is truncated; the policy
	// allows every request, so the answer must be an allow, not an error.
	if !a.allowed {
		t.Fatalf("a 5 MiB request: %+v", a)
	}
	deny := startPolicy(t, "package envoy.authz\n\ndefault allow := false\n")
	deny.waitReady()
	if a := read(deny.check(req)); a.allowed || a.status == 0 {
		t.Fatalf("a 5 MiB request to a denying policy: %+v", a)
	}
}

// Item 6: header names a policy may not set or remove are refused (500),
// on allow and deny answers alike, and the reason is logged.
func TestPolicyHeaderNamesAreChecked(t *testing.T) {
	h := startPolicy(t, `package envoy.authz

allow := {"allowed": true, "headers": {"host": "evil.example"}} if input.parsed_path[0] == "host"
allow := {"allowed": true, "headers": {":path": "/admin"}} if input.parsed_path[0] == "pseudo"
allow := {"allowed": false, "headers": {"transfer-encoding": "chunked"}} if input.parsed_path[0] == "te"
allow := {"allowed": true, "request_headers_to_remove": ["connection"]} if input.parsed_path[0] == "connection"
allow := {"allowed": true, "response_headers_to_add": {"bad name(": "x"}} if input.parsed_path[0] == "token"
allow := {"allowed": true, "headers": {"x-fine": "ok"}} if input.parsed_path[0] == "fine"
`)
	h.waitReady()
	for _, p := range []string{"/host", "/pseudo", "/te", "/connection", "/token"} {
		if a := read(h.check(envoyRequest("GET", p, nil))); a.allowed || a.status != 500 {
			t.Errorf("%s: %+v, want a 500 deny", p, a)
		}
	}
	if a := read(h.check(envoyRequest("GET", "/fine", nil))); !a.allowed || a.headers["x-fine"] != "ok" {
		t.Errorf("/fine: %+v", a)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "pseudo-header") || !strings.Contains(logs, "connection or routing header") {
		t.Errorf("the refused names are not logged:\n%s", grepLines(logs, "policy"))
	}
}

// Item 7: a JWKS redirect must pass the configured URL's rule; a loopback
// JWKS cannot send tokenwise to a plain-http host elsewhere.
func TestJWKSRedirectsPassTheURLRule(t *testing.T) {
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://keys.invalid/jwks.json", http.StatusFound)
	}))
	defer redirect.Close()
	h := start(t, func(c *config.Config) { c.Issuers[0].JWKSURL = redirect.URL })
	eventually(t, 10*time.Second, func() bool { return strings.Contains(h.logs.String(), "jwks fetch failed") })
	if !strings.Contains(h.logs.String(), "redirect to http://keys.invalid/jwks.json refused") {
		t.Errorf("the redirect was not refused by the URL rule:\n%s", grepLines(h.logs.String(), "jwks"))
	}
	if h.readyz() == http.StatusOK {
		t.Error("ready without keys")
	}
	if a := read(h.check(envoyRequest("GET", "/orders/1", bearer(h.goodToken(nil))))); a.allowed || a.status != 503 {
		t.Errorf("a token was not refused: %+v", a)
	}
}

// Item 8: trace context in the downstream request's headers never forces
// sampling: with sample_ratio 0 only Envoy's own sampled context exports.
func TestAClientCannotSteerTracing(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	col := startCollector(t)
	zero := 0.0
	h := start(t, func(c *config.Config) {
		c.Tracing = config.Tracing{OTLPEndpoint: col.addr, Insecure: true, ServiceName: "tokenwise", SampleRatio: &zero}
	})
	h.waitReady()
	const w3c, b3 = "11111111111111111111111111111111", "22222222222222222222222222222222"
	h.check(envoyRequest("GET", "/public/x", map[string]string{"traceparent": "00-" + w3c + "-00f067aa0ba902b7-01"}))
	h.check(envoyRequest("GET", "/public/x", map[string]string{"x-b3-traceid": b3, "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1"}))
	// Positive control, sent last: Envoy's sampled context in the gRPC
	// metadata is followed. Once its spans arrive, anything sent before
	// would have arrived too.
	const envoyTrace = "33333333333333333333333333333333"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+envoyTrace+"-00f067aa0ba902b7-01")
	if _, err := h.client.Check(ctx, envoyRequest("GET", "/public/x", nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return col.trace(envoyTrace)["tokenwise.Check"] != nil })
	for _, id := range []string{w3c, b3} {
		if spans := col.trace(id); len(spans) != 0 {
			t.Errorf("a client's sampled flag exported %d spans of trace %s", len(spans), id)
		}
	}
}

// Item 9: with the Redis store, readiness waits for the revocation set's
// first load; after that an outage keeps the last set and readiness; and
// grpc.health.v1 agrees with /readyz at every probe.
func TestReadinessWaitsForTheRevocationSet(t *testing.T) {
	rs := redistest.Start(t)
	rs.Stop() // down at start
	h := start(t, redisStore(rs.Addr()))
	// The JWKS loads; the revocation set cannot.
	eventually(t, 10*time.Second, func() bool { return strings.Contains(h.logs.String(), "jwks loaded") })
	if code := h.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with the revocation set never loaded", code)
	}
	if s := h.health(); s != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("grpc health = %v while /readyz says not ready", s)
	}
	rs.Restart()
	// Whenever /readyz says ready, a health probe right after says SERVING.
	eventually(t, 15*time.Second, func() bool {
		ready := h.readyz() == http.StatusOK
		if ready && h.health() != healthpb.HealthCheckResponse_SERVING {
			t.Fatal("/readyz ready but grpc health not SERVING")
		}
		return ready
	})
	rs.Stop()
	for range 5 {
		if h.readyz() != http.StatusOK || h.health() != healthpb.HealthCheckResponse_SERVING {
			t.Fatal("a Redis outage after the first load made the server unready")
		}
	}
}

// Item 10: an empty jti is an invalid token.
func TestAnEmptyJTIIsAnInvalidToken(t *testing.T) {
	h := start(t)
	h.waitReady()
	a := read(h.check(envoyRequest("GET", "/orders/1", bearer(h.goodToken(map[string]any{"jti": ""})))))
	if a.allowed || a.status != 401 || a.errorField() != "invalid_token" {
		t.Fatalf("empty jti: %+v", a)
	}
	if a := read(h.check(envoyRequest("GET", "/orders/1", bearer(h.goodToken(map[string]any{"jti": "j"}))))); !a.allowed {
		t.Fatalf("a jti: %+v", a)
	}
}

// Item 11: a policy cannot run forever; past policy.timeout it is a 500 deny.
func TestAPolicyCannotRunForever(t *testing.T) {
	h := startPolicy(t, `package envoy.authz

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
`, func(c *config.Config) { c.Policy.Timeout = 100 * time.Millisecond })
	h.waitReady()
	// The client waits far longer than policy.timeout: the answer must come
	// from tokenwise's own deadline, as a deny, not from the caller giving up.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := h.client.Check(ctx, envoyRequest("GET", "/slow", nil))
	if err != nil {
		t.Fatalf("a runaway policy: gRPC error %v", err)
	}
	if a := read(resp); a.allowed || a.status != 500 {
		t.Fatalf("a runaway policy: %+v", a)
	}
	if a := read(h.check(envoyRequest("GET", "/fast", nil))); !a.allowed {
		t.Fatalf("after a runaway policy: %+v", a)
	}
}

// Item 13: the bundled policies refuse every dot-segment spelling on the
// public-route guard and remove the headers they set when they do not set them.
func TestTheBundledPoliciesHoldTheLine(t *testing.T) {
	dir, err := filepath.Abs("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config) { c.Policy.Paths = []string{dir} })
	h.waitReady()
	for _, p := range []string{"/public/..;/orders", "/public/%252e%252E/orders", "/public/..%5corders", "/public/..%255corders", "/public/x%5c..%5c..%5corders"} {
		if a := read(h.check(envoyRequest("GET", p, nil))); a.allowed {
			t.Errorf("%s allowed", p)
		}
	}
	a := read(h.check(envoyRequest("GET", "/public/hello", map[string]string{"x-user-scopes": "admin"})))
	if !a.allowed || !contains(a.removed, "x-user-scopes") {
		t.Errorf("public route: allowed %v, removed %v; a client's x-user-scopes would reach the upstream", a.allowed, a.removed)
	}
	a = read(h.check(envoyRequest("GET", "/orders/1", bearer(h.goodToken(nil)))))
	if !a.allowed || a.headers["x-user-scopes"] != "orders:read" {
		t.Errorf("protected route: %+v", a)
	}
}
