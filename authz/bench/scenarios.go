package bench

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// tokenKind says where a scenario's bearer tokens come from.
type tokenKind int

const (
	// noToken sends no Authorization header.
	noToken tokenKind = iota
	// pooled reuses a pool of valid tokens minted once.
	pooled
	// fresh uses each token once: they are minted before the run, outside the
	// measured time, because signing costs far more than verifying.
	fresh
)

// scenario is one kind of Check to measure against the floor.
type scenario struct {
	name   string
	desc   string
	method string
	path   string
	tokens tokenKind
	alg    string
	// wantStatus is the HTTP status of the expected answer (200: allowed).
	wantStatus int
	// redis runs the scenario against the server whose use limits are in Redis.
	redis bool
	// redisKind picks that Redis: "" one server (--redis or started here),
	// redisCluster a three-master cluster, redisWait a master with a replica
	// and wait_replicas: 1.
	redisKind string
	// halfRate runs open-loop at half of reuse's throughput measured so far.
	halfRate bool
	// http asks over HTTP authorization mode; its floor is httpFloor.
	http bool
	// dpop sends DPoP-bound tokens with a fresh DPoP proof per Check.
	dpop bool
	// nocache runs against the server whose policy also reads x-request-id,
	// new per Check, so no decision is ever remembered.
	nocache bool
}

// scenarios are every scenario, in the order they run.
var scenarios = []*scenario{
	{name: "reuse", desc: "RS256, a pool of 1000 valid tokens reused; object decision with headers",
		method: "GET", path: "/orders/42?view=full", tokens: pooled, alg: "RS256", wantStatus: 200},
	{name: "reuse-nocache", desc: "reuse, but the policy also reads x-request-id (new per Check): every Check misses the decision cache",
		method: "GET", path: "/orders/42?view=full", tokens: pooled, alg: "RS256", wantStatus: 200, nocache: true},
	{name: "reuse-half", desc: "reuse, open-loop at half of reuse's measured Checks/s (for p99 at half load)",
		method: "GET", path: "/orders/42?view=full", tokens: pooled, alg: "RS256", wantStatus: 200, halfRate: true},
	{name: "unique", desc: "RS256, a fresh token per Check: every Check verifies a signature",
		method: "GET", path: "/orders/42?view=full", tokens: fresh, alg: "RS256", wantStatus: 200},
	{name: "es256", desc: "ES256, a fresh token per Check",
		method: "GET", path: "/orders/42?view=full", tokens: fresh, alg: "ES256", wantStatus: 200},
	{name: "deny", desc: "RS256 pooled tokens; the policy denies (403)",
		method: "GET", path: "/admin/users", tokens: pooled, alg: "RS256", wantStatus: 403},
	{name: "anonymous", desc: "no token; a public route",
		method: "GET", path: "/public/status", tokens: noToken, wantStatus: 200},
	{name: "one-time-memory", desc: "ES256, a fresh one-time token per Check; in-memory use store",
		method: "POST", path: "/pay", tokens: fresh, alg: "ES256", wantStatus: 200},
	{name: "one-time-redis", desc: "ES256, a fresh one-time token per Check; Redis use store",
		method: "POST", path: "/pay", tokens: fresh, alg: "ES256", wantStatus: 200, redis: true},
	{name: "one-time-redis-cluster", desc: "one-time-redis on a three-master Redis Cluster started here",
		method: "POST", path: "/pay", tokens: fresh, alg: "ES256", wantStatus: 200, redis: true, redisKind: redisCluster},
	{name: "one-time-redis-wait", desc: "one-time-redis with wait_replicas: 1 (a master and a replica started here)",
		method: "POST", path: "/pay", tokens: fresh, alg: "ES256", wantStatus: 200, redis: true, redisKind: redisWait},
	{name: "http-reuse", desc: "reuse over HTTP authorization mode (X-Forwarded-*, HTTP/1.1 keep-alive); floor: a no-op HTTP server",
		method: "GET", path: "/orders/42?view=full", tokens: pooled, alg: "RS256", wantStatus: 200, http: true},
	{name: "rate-limit-redis", desc: "ES256, a fresh token per Check under a per-user rate limit (never exhausted); Redis store",
		method: "GET", path: "/limited", tokens: fresh, alg: "ES256", wantStatus: 200, redis: true, redisKind: redisRateLimit},
	{name: "dpop", desc: "DPoP: RS256 bound tokens reused (cached), a fresh ES256 proof verified per Check",
		method: "GET", path: "/orders/42?view=full", tokens: fresh, alg: "ES256", wantStatus: 200, dpop: true},
}

// Redis kinds of the Redis scenarios.
const (
	redisCluster = "cluster"
	redisWait    = "wait"
	// redisRateLimit is one Redis server (or --redis) like one-time-redis's,
	// under the tokenwise server with rateLimitPolicy.
	redisRateLimit = "ratelimit"
)

func scenarioByName(name string) *scenario {
	for _, s := range scenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}

// floor is the no-op server's pseudo-scenario: the same requests as reuse.
var floor = &scenario{name: "floor", desc: "no-op ext_authz server: OK to everything",
	method: "GET", path: "/orders/42?view=full", tokens: pooled, alg: "RS256", wantStatus: 200}

// benchPolicy is the Rego the tokenwise servers run: an object decision with
// headers for orders, a public route, a one-time payment route, and a deny
// with a reason for everything else. It reads only the token's scopes, so
// fresh tokens with the same scopes share remembered decisions, as in a
// typical deployment; the rate-limited route, which reads sub, lives in
// rateLimitPolicy on a server of its own.
const benchPolicy = `package envoy.authz

default allow := {"allowed": false, "http_status": 403, "reason": "no rule allows this request"}

allow := {"allowed": true, "headers": {"x-scopes": concat(" ", input.token.scopes), "x-tenant": "acme"}} if {
	input.parsed_path[0] == "orders"
	input.attributes.request.http.method == "GET"
	"orders:read" in input.token.scopes
}

allow := {"allowed": true} if input.parsed_path[0] == "public"

allow := {"allowed": true, "one_time_use": true} if {
	input.parsed_path == ["pay"]
	input.attributes.request.http.method == "POST"
	"payments:write" in input.token.scopes
}
`

// rateLimitPolicy is benchPolicy plus a route under a per-user rate limit.
// Its key reads the token's sub, so every fresh token is a decision-cache
// miss: it runs on its own server lest the other fresh-token scenarios pay
// for that too.
const rateLimitPolicy = benchPolicy + `
allow := {"allowed": true, "rate_limits": [{"name": "per-user", "key": input.token.claims.sub, "requests": 1000000, "per": "1s"}]} if {
	input.parsed_path == ["limited"]
	"orders:read" in input.token.scopes
}
`

// nocachePolicy is benchPolicy whose orders rule also reads x-request-id,
// which the load generator sets anew for every Check: each Check is a
// decision-cache miss, so the uncached cost stays visible.
var nocachePolicy = strings.Replace(benchPolicy, `	"orders:read" in input.token.scopes
`, `	"orders:read" in input.token.scopes
	input.attributes.request.http.headers["x-request-id"] != ""
`, 1)

// newRequest builds a CheckRequest the way Envoy's ext_authz filter does for
// an HTTP/1.1 request from a browser-like client: lowercase headers
// including the pseudo-headers, peers, the stream id and the request time.
// The caller sets authorization and x-request-id per Check.
func newRequest(s *scenario, worker int) *authv3.CheckRequest {
	headers := map[string]string{
		":authority":        "api.example.com",
		":method":           s.method,
		":path":             s.path,
		":scheme":           "https",
		"accept":            "application/json",
		"accept-encoding":   "gzip, deflate, br",
		"accept-language":   "en-GB,en;q=0.9",
		"user-agent":        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"x-forwarded-for":   "203.0.113.7",
		"x-forwarded-proto": "https",
		"x-request-id":      "",
	}
	if s.method == "POST" {
		headers["content-type"] = "application/json"
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socketAddress("203.0.113.7", 40000+uint32(worker))},
		Destination: &authv3.AttributeContext_Peer{Address: socketAddress("10.0.0.5", 8443)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       strconv.Itoa(worker),
				Method:   s.method,
				Path:     s.path,
				Host:     "api.example.com",
				Scheme:   "https",
				Protocol: "HTTP/1.1",
				Headers:  headers,
			},
		},
		MetadataContext: &corev3.Metadata{},
	}}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// statusOf is the HTTP status a CheckResponse stands for: 200 for an OK
// answer, else the denied response's status.
func statusOf(resp *authv3.CheckResponse) int {
	if resp.GetStatus().GetCode() == 0 && resp.GetDeniedResponse() == nil {
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}
