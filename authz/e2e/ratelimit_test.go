package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/uselimit/redistest"
)

// ratePolicy limits routes as a platform team would: per user, per source
// address on an anonymous route, a tenant quota stacked on a per-user burst,
// a one-time payment behind a rate limit, and one malformed limit.
const ratePolicy = `package envoy.authz

default allow := {"allowed": false}

sub := input.token.claims.sub

allow := {"allowed": true, "rate_limits": [{"name": "per-user", "key": sub, "requests": 3, "per": "1h"}]} if input.parsed_path == ["limited"]

allow := {"allowed": true, "rate_limits": [{"name": "fast", "key": sub, "requests": 10, "per": "1s", "burst": 1}]} if input.parsed_path == ["fast"]

allow := {"allowed": true, "rate_limits": [
	{"name": "burst", "key": sub, "requests": 4, "per": "1h"},
	{"name": "tenant-quota", "key": input.token.claims.tenant, "requests": 3, "per": "1h"},
]} if input.parsed_path == ["stacked"]

allow := {"allowed": true, "rate_limits": [{"name": "per-address", "key": input.attributes.source.address.socketAddress.address, "requests": 2, "per": "1h"}]} if input.parsed_path == ["public"]

allow := {"allowed": true, "one_time_use": true, "rate_limits": [{"name": "payments", "key": sub, "requests": 1, "per": "1h"}]} if input.parsed_path == ["pay"]

allow := {"allowed": true, "one_time_use": true} if input.parsed_path == ["pay-unlimited"]

allow := {"allowed": true} if input.parsed_path == ["plain"]

allow := {"allowed": true, "rate_limits": [{"name": "broken", "key": sub, "requests": 3}]} if input.parsed_path == ["broken"]
`

func startRate(t *testing.T, edit ...func(*config.Config)) *harness {
	t.Helper()
	h := startPolicy(t, ratePolicy, edit...)
	h.waitReady()
	return h
}

func (h *harness) mintFor(sub string, extra ...string) string {
	claims := map[string]any{"sub": sub, "aud": "orders-api", "jti": fmt.Sprint(sub, "-", time.Now().UnixNano())}
	for i := 0; i+1 < len(extra); i += 2 {
		claims[extra[i]] = extra[i+1]
	}
	return h.issuer.Mint(claims)
}

// clientHeaders are the headers an answer adds to the response to the client:
// response_headers_to_add on an allow, the denied response's headers on a deny.
func clientHeaders(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, o := range resp.GetOkResponse().GetResponseHeadersToAdd() {
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	for _, o := range resp.GetDeniedResponse().GetHeaders() {
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return out
}

// rateHeaders parses RateLimit-Policy and RateLimit back with the
// structured-field parser: the limit's name and its parameters.
func rateHeaders(t *testing.T, h map[string]string) (name string, params map[string]int64) {
	t.Helper()
	params = map[string]int64{}
	for _, field := range []string{"ratelimit-policy", "ratelimit"} {
		list, err := httpsfv.UnmarshalList([]string{h[field]})
		if err != nil || len(list) != 1 {
			t.Fatalf("%s: %q does not parse as a structured-field list of one: %v", field, h[field], err)
		}
		item, ok := list[0].(httpsfv.Item)
		if !ok {
			t.Fatalf("%s: %q is not an item", field, h[field])
		}
		if name, ok = item.Value.(string); !ok {
			t.Fatalf("%s: %q does not name the limit with a string", field, h[field])
		}
		for _, k := range item.Params.Names() {
			v, _ := item.Params.Get(k)
			params[k], _ = v.(int64)
		}
	}
	return name, params
}

func TestRateLimitRefusesWith429AndStructuredHeaders(t *testing.T) {
	h := startRate(t)
	token := h.mintFor("alice")
	for i := range 3 {
		resp := h.check(envoyRequest("GET", "/limited", bearer(token)))
		if !read(resp).allowed {
			t.Fatalf("request %d within the limit: %+v", i+1, read(resp))
		}
		name, p := rateHeaders(t, clientHeaders(resp))
		if name != "per-user" || p["q"] != 3 || p["w"] != 3600 || p["r"] != int64(2-i) || p["t"] < 1 {
			t.Errorf("allowed request %d: %q %v; want per-user q=3 w=3600 r=%d", i+1, name, p, 2-i)
		}
	}
	resp := h.check(envoyRequest("GET", "/limited", bearer(token)))
	a := read(resp)
	if a.allowed || a.status != 429 {
		t.Fatalf("past the limit: %+v, want 429", a)
	}
	headers := clientHeaders(resp)
	retry, err := strconv.Atoi(headers["retry-after"])
	if err != nil || retry < 1190 || retry > 1200 {
		t.Errorf("retry-after %q; want the 1200 s until one request comes back (minus time passed)", headers["retry-after"])
	}
	name, p := rateHeaders(t, headers)
	if name != "per-user" || p["q"] != 3 || p["w"] != 3600 || p["r"] != 0 || p["t"] < 3500 {
		t.Errorf("429: %q %v; want per-user q=3 w=3600 r=0 t≈3600", name, p)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || body["error"] != "rate_limited" || body["error_description"] != `rate limit "per-user" exceeded` {
		t.Errorf("body %s", a.body)
	}
	if headers["www-authenticate"] != "" || headers["content-type"] != "application/json" {
		t.Errorf("429 headers %v", headers)
	}
	// Another user has a key of their own.
	if !read(h.check(envoyRequest("GET", "/limited", bearer(h.mintFor("bob"))))).allowed {
		t.Error("alice's limit refused bob")
	}
	// A route without limits gets no RateLimit headers.
	if got := clientHeaders(h.check(envoyRequest("GET", "/plain", bearer(token)))); got["ratelimit"] != "" {
		t.Errorf("an unlimited route carries %v", got)
	}
	_, metrics := h.get("/metrics")
	for _, series := range []string{
		`tokenwise_rate_limit_decisions_total{limit="per-user",result="limited"} 1`,
		`tokenwise_rate_limit_decisions_total{limit="per-user",result="allowed"} 4`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"rate_limit":"per-user","rate_limit_remaining":0`) || !strings.Contains(logs, `"status":429`) {
		t.Errorf("the decision log does not name the limit and its remaining count:\n%s", logs)
	}
	if strings.Contains(logs, "alice") && !strings.Contains(logs, `"sub":"alice"`) {
		t.Error("the rate-limit key appears in the log outside the subject field")
	}
}

func TestA429LeavesTheOneTimeUseIntact(t *testing.T) {
	h := startRate(t)
	if !read(h.check(envoyRequest("POST", "/pay", bearer(h.mintFor("alice"))))).allowed {
		t.Fatal("the first payment was refused")
	}
	second := h.mintFor("alice")
	if a := read(h.check(envoyRequest("POST", "/pay", bearer(second)))); a.status != 429 {
		t.Fatalf("the second payment within the hour: %+v, want 429", a)
	}
	// The 429 came before the use limit: the token's one use is still there.
	if a := read(h.check(envoyRequest("POST", "/pay-unlimited", bearer(second)))); !a.allowed {
		t.Fatalf("the rate-limited token's one use was burnt: %+v", a)
	}
	if a := read(h.check(envoyRequest("POST", "/pay-unlimited", bearer(second)))); a.status != 401 {
		t.Fatalf("the token's second use: %+v, want 401", a)
	}
}

func TestStackedLimitsAreAllOrNothing(t *testing.T) {
	redis := redistest.Start(t)
	for name, f := range map[string]func(*testing.T) fleet{
		"memory": func(t *testing.T) fleet { return fleet{startRate(t)} },
		"redis, two replicas": func(t *testing.T) fleet {
			f := startFleetPolicy(t, 2, ratePolicy, redisStore(redis.Addr()))
			return f
		},
		// In a cluster the two buckets are on different shards: a refusal by
		// one gives back what the other took.
		"redis cluster, two replicas": func(t *testing.T) fleet {
			c := redistest.StartCluster(t, 3)
			return startFleetPolicy(t, 2, ratePolicy, func(cfg *config.Config) {
				redisCluster(c)(cfg)
				cfg.RateLimits.Timeout = 2 * time.Second // two shards on a loaded machine
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := f(t)
			sub := strings.ReplaceAll(name, " ", "-")
			acme, globex := f[0].mintFor(sub, "tenant", "acme-"+sub), f[0].mintFor(sub, "tenant", "globex-"+sub)
			steps := []struct {
				token   string
				refused string // the limit that refuses, "" to pass
			}{
				{acme, ""}, {acme, ""}, {acme, ""}, // burst 4 → 1 left; acme's quota 3 → 0
				{acme, "tenant-quota"}, // refused: takes nothing from burst
				{globex, ""},           // burst's last one (would be refused had the 429 taken one)
				{globex, "burst"},
			}
			for i, s := range steps {
				resp := f[i%len(f)].check(envoyRequest("GET", "/stacked", bearer(s.token)))
				a := read(resp)
				if s.refused == "" && !a.allowed || s.refused != "" && a.status != 429 {
					t.Fatalf("step %d: %+v, want refused by %q", i+1, a, s.refused)
				}
				if s.refused != "" {
					if got, _ := rateHeaders(t, clientHeaders(resp)); got != s.refused {
						t.Errorf("step %d refused by %q, want %q", i+1, got, s.refused)
					}
				}
			}
		})
	}
}

// startFleetPolicy is startFleet with another policy.
func startFleetPolicy(t *testing.T, n int, rego string, edit func(*config.Config)) fleet {
	first := startPolicy(t, rego, edit)
	f := fleet{first}
	for range n - 1 {
		f = append(f, startPolicy(t, rego, edit, func(c *config.Config) {
			c.Issuers[0] = first.issuer.Config("corp")
			c.Issuers[0].Audiences = []string{"orders-api"}
		}))
	}
	for _, h := range f {
		h.waitReady()
	}
	return f
}

func TestRateLimitsHoldAcrossReplicasSharingRedis(t *testing.T) {
	redis := redistest.Start(t)
	f := startFleetPolicy(t, 2, ratePolicy, redisStore(redis.Addr()))
	token := f[0].mintFor("carol")
	const n = 120
	allowed, statuses := f.checkConcurrentlyMethod(t, n, "GET", "/limited", token)
	if allowed != 3 || statuses[429] != n-3 {
		t.Fatalf("allowed %d, denials %v; want exactly the burst (3) over two replicas, the rest 429", allowed, statuses)
	}
}

func TestRateLimitRefillsInRealTime(t *testing.T) {
	h := startRate(t)
	token := h.mintFor("dave")
	if !read(h.check(envoyRequest("GET", "/fast", bearer(token)))).allowed {
		t.Fatal("the first request was refused")
	}
	resp := h.check(envoyRequest("GET", "/fast", bearer(token)))
	if a := read(resp); a.status != 429 || clientHeaders(resp)["retry-after"] != "1" {
		t.Fatalf("the second at once: %+v %v, want 429 with retry-after 1 (100ms rounded up)", a, clientHeaders(resp))
	}
	eventually(t, 5*time.Second, func() bool { return read(h.check(envoyRequest("GET", "/fast", bearer(token)))).allowed })
}

func TestAnonymousRouteLimitedBySourceAddress(t *testing.T) {
	h := startRate(t)
	for i := range 2 {
		if a := read(h.check(envoyRequest("GET", "/public", nil))); !a.allowed {
			t.Fatalf("anonymous request %d: %+v", i+1, a)
		}
	}
	if a := read(h.check(envoyRequest("GET", "/public", nil))); a.status != 429 {
		t.Fatalf("the third from one address: %+v, want 429", a)
	}
	other := envoyRequest("GET", "/public", nil)
	other.Attributes.Source.Address.GetSocketAddress().Address = "10.9.9.9"
	if a := read(h.check(other)); !a.allowed {
		t.Errorf("another address was refused: %+v", a)
	}
}

func TestMalformedRateLimitIsAPolicyError(t *testing.T) {
	h := startRate(t)
	if a := read(h.check(envoyRequest("GET", "/broken", bearer(h.mintFor("erin"))))); a.allowed || a.status != 500 {
		t.Fatalf("a limit without per: %+v, want 500", a)
	}
}

func TestShadowModeCountsButNeverRefuses(t *testing.T) {
	h := startRate(t, func(c *config.Config) { c.RateLimits.Shadow = true })
	token := h.mintFor("frank")
	for i := range 5 {
		resp := h.check(envoyRequest("GET", "/limited", bearer(token)))
		if !read(resp).allowed {
			t.Fatalf("request %d refused in shadow mode", i+1)
		}
		if got := clientHeaders(resp); got["ratelimit"] != "" {
			t.Errorf("shadow mode shows the client %v", got)
		}
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `tokenwise_rate_limit_decisions_total{limit="per-user",result="shadow_limited"} 2`) {
		t.Error("/metrics does not count the shadow refusals")
	}
	if !strings.Contains(h.logs.String(), "rate limit exceeded; allowed in shadow mode") {
		t.Error("the shadow refusals are not logged")
	}
}

func TestRateLimitHeadersCanBeTurnedOff(t *testing.T) {
	off := false
	h := startRate(t, func(c *config.Config) { c.RateLimits.Headers = &off })
	token := h.mintFor("grace")
	for range 3 {
		if got := clientHeaders(h.check(envoyRequest("GET", "/limited", bearer(token)))); len(got) != 0 {
			t.Fatalf("headers: false, yet an allowed answer carries %v", got)
		}
	}
	resp := h.check(envoyRequest("GET", "/limited", bearer(token)))
	if read(resp).status != 429 || clientHeaders(resp)["ratelimit"] == "" {
		t.Fatal("a 429 must still say which limit and when")
	}
}

func TestARedisOutageFails503ForRateLimitedRoutesOnly(t *testing.T) {
	redis := redistest.Start(t)
	h := startRate(t, redisStore(redis.Addr()), func(c *config.Config) { c.RateLimits.Timeout = 200 * time.Millisecond })
	token := h.mintFor("heidi")
	if !read(h.check(envoyRequest("GET", "/limited", bearer(token)))).allowed {
		t.Fatal("refused before the outage")
	}
	redis.Stop()
	if a := read(h.check(envoyRequest("GET", "/limited", bearer(token)))); a.status != 503 {
		t.Fatalf("a limited route with Redis down: %+v, want 503", a)
	}
	if a := read(h.check(envoyRequest("GET", "/plain", bearer(token)))); !a.allowed {
		t.Fatalf("an unlimited route with Redis down: %+v, want allowed", a)
	}
	redis.Restart()
	// Same tokenwise, no restart: the limit works again, and the new
	// Redis starts from an empty count.
	eventually(t, 10*time.Second, func() bool {
		return read(h.check(envoyRequest("GET", "/limited", bearer(token)))).allowed
	})
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `tokenwise_rate_limit_decisions_total{limit="per-user",result="error"}`) {
		t.Error("/metrics does not count the store errors")
	}
}

func TestOnStoreErrorAllowLetsRateLimitedRequestsThrough(t *testing.T) {
	redis := redistest.Start(t)
	h := startRate(t, redisStore(redis.Addr()), func(c *config.Config) {
		c.UseLimits.OnStoreError = "allow"
		c.RateLimits.Timeout = 200 * time.Millisecond
	})
	redis.Stop()
	if a := read(h.check(envoyRequest("GET", "/limited", bearer(h.mintFor("ivan"))))); !a.allowed {
		t.Fatalf("on_store_error: allow, Redis down: %+v, want allowed", a)
	}
	if !strings.Contains(h.logs.String(), "rate-limit store failed; allowing as configured") {
		t.Error("the fail-open allow is not logged")
	}
}
