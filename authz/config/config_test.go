package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const full = `
grpc:
  address: 127.0.0.1:9191
  reflection: false
http:
  address: 127.0.0.1:9192
issuers:
  - name: corp
    issuer: https://idp.example.com/
    jwks_url: https://idp.example.com/.well-known/jwks.json
    audiences: [orders-api]
    algorithms: [RS256, ES256]
    leeway: 45s
    require_expiration: false
    max_lifetime: 1h
    typ: at+jwt
    refresh_interval: 5m
token:
  header: Authorization
  cookie: session
policy:
  paths: [policies/]
use_limits:
  store: redis
  redis: {address: "${TW_TEST_REDIS}", password: "${TW_TEST_UNSET:-}"}
  max_ttl: 2h
forward:
  claims_to_headers: {sub: x-user-id}
  remove_authorization: true
`

func TestParseFull(t *testing.T) {
	t.Setenv("TW_TEST_REDIS", "10.0.0.5:6380")
	c, err := Parse([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	is := c.Issuers[0]
	if is.Leeway != 45*time.Second || is.MaxLifetime != time.Hour || is.ExpirationRequired() || is.Typ != "at+jwt" {
		t.Errorf("issuer = %+v", is)
	}
	if c.GRPC.ReflectionEnabled() {
		t.Error("reflection: false was ignored")
	}
	if c.UseLimits.Redis.Address != "10.0.0.5:6380" || c.UseLimits.Redis.Password != "" {
		t.Errorf("expansion: redis = %+v", c.UseLimits.Redis)
	}
	if c.Token.Header != "authorization" {
		t.Errorf("header name not lowercased: %q", c.Token.Header)
	}
	if c.UseLimits.OnStoreError != "deny" || c.UseLimits.Redis.KeyPrefix != "tokenwise:" || c.Policy.Query != "data.envoy.authz.allow" {
		t.Errorf("defaults not applied: %+v %+v", c.UseLimits, c.Policy)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("issuers:\n  - {name: a, issuer: https://a/, jwks_url: https://a/jwks}\n"))
	if err != nil {
		t.Fatal(err)
	}
	is := c.Issuers[0]
	if !is.ExpirationRequired() || is.Leeway != 30*time.Second || len(is.Algorithms) != len(DefaultAlgorithms) || is.RefreshInterval != 5*time.Minute {
		t.Errorf("issuer defaults = %+v", is)
	}
	if !c.GRPC.ReflectionEnabled() || c.GRPC.Address != "127.0.0.1:9191" || c.HTTP.Address != "127.0.0.1:9192" || c.UseLimits.Store != "memory" || c.UseLimits.MaxTTL != 24*time.Hour {
		t.Errorf("defaults = %+v", c)
	}
	if _, err := Parse(nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestFaults(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown key":        {"grpc:\n  adress: x\n", "grpc.adress (line 2): unknown key \"adress\"; did you mean address?"},
		"bad duration":       {"issuers:\n  - {name: a, issuer: i, jwks_url: https://i/jwks, leeway: soon}\n", "soon"},
		"HMAC":               {"issuers:\n  - {name: a, issuer: i, jwks_url: https://i/jwks, algorithms: [HS256]}\n", `algorithm "HS256" not allowed`},
		"none":               {"issuers:\n  - {name: a, issuer: i, jwks_url: https://i/jwks, algorithms: [none]}\n", `"none" not allowed`},
		"duplicate name":     {"issuers:\n  - {name: a, issuer: i, jwks_url: https://i/jwks}\n  - {name: a, issuer: j, jwks_url: https://i/jwks}\n", "name used twice"},
		"duplicate issuer":   {"issuers:\n  - {name: a, issuer: i, jwks_url: https://i/jwks}\n  - {name: b, issuer: i, jwks_url: https://i/jwks}\n", "used twice"},
		"no jwks":            {"issuers:\n  - {name: a, issuer: i}\n", "jwks_url is required"},
		"bad name":           {"issuers:\n  - {name: 'a b', issuer: i, jwks_url: https://i/jwks}\n", "issuers[0].name"},
		"store":              {"use_limits: {store: etcd}\n", "use_limits.store"},
		"on_store_error":     {"use_limits: {on_store_error: maybe}\n", "on_store_error"},
		"address":            {"grpc: {address: nowhere}\n", "grpc.address"},
		"half tls":           {"grpc: {tls: {cert_file: a.pem}}\n", "cert_file and key_file"},
		"log level":          {"log: {level: loud}\n", "log.level"},
		"header upper":       {"forward: {claims_to_headers: {sub: X-User}}\n", "claims_to_headers"},
		"header pseudo":      {"forward: {claims_to_headers: {sub: \":path\"}}\n", "claims_to_headers"},
		"header host":        {"forward: {claims_to_headers: {sub: host}}\n", `forward.claims_to_headers "sub": "host" is a connection or routing header`},
		"header hop-by-hop":  {"forward: {claims_to_headers: {sub: transfer-encoding}}\n", `"transfer-encoding" is a connection or routing header`},
		"header not token":   {"forward: {claims_to_headers: {sub: \"x user\"}}\n", `"x user" is not a header name (an RFC 9110 token)`},
		"header separator":   {"forward: {claims_to_headers: {sub: \"x-a,b\"}}\n", `"x-a,b" is not a header name`},
		"not a map":          {"- just\n- a list\n", "want keys and values"},
		"query":              {"policy: {query: allow}\n", "policy.query"},
		"unknown nested key": {"use_limits:\n  redis: {adress: x}\n", "use_limits.redis.adress"},
		"redis mode":         {"use_limits: {store: redis, redis: {mode: ring}}\n", "use_limits.redis.mode"},
		"cluster no seeds":   {"use_limits: {store: redis, redis: {mode: cluster}}\n", "use_limits.redis.addresses"},
		"sentinel no seeds":  {"use_limits: {store: redis, redis: {mode: sentinel, sentinel_master: m}}\n", "use_limits.redis.addresses"},
		"sentinel no master": {"use_limits: {store: redis, redis: {mode: sentinel, addresses: [\"s:26379\"]}}\n", "use_limits.redis.sentinel_master"},
		"cluster bad seed":   {"use_limits: {store: redis, redis: {mode: cluster, addresses: [nowhere]}}\n", "use_limits.redis.addresses[0]"},
		"cluster db":         {"use_limits: {store: redis, redis: {mode: cluster, addresses: [\"a:1\"], db: 2}}\n", "use_limits.redis.db"},
		"wait_replicas":      {"use_limits: {store: redis, redis: {wait_replicas: -1}}\n", "use_limits.redis.wait_replicas"},
		"wait_timeout":       {"use_limits: {store: redis, redis: {wait_timeout: 1us}}\n", "use_limits.redis.wait_timeout"},
		"standalone address": {"use_limits: {store: redis, redis: {address: nowhere}}\n", "use_limits.redis.address"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tw.yaml")
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("err = %v, want file and key named", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestJWKSURLMustBeHTTPS(t *testing.T) {
	issuer := func(url, extra string) string {
		return "issuers:\n  - {name: a, issuer: https://a/, jwks_url: \"" + url + "\"" + extra + "}\n"
	}
	for _, url := range []string{
		"https://idp.example.com/jwks",
		"http://127.0.0.1:8080/jwks",
		"http://127.1.2.3/jwks",
		"http://[::1]:9000/jwks",
		"http://localhost:9000/jwks",
		"http://LOCALHOST/jwks",
	} {
		if _, err := Parse([]byte(issuer(url, ""))); err != nil {
			t.Errorf("%s refused: %v", url, err)
		}
	}
	for _, url := range []string{
		"http://idp.example.com/jwks",
		"http://10.0.0.1/jwks",
		"http://localhost.evil.example/jwks",
		"http://127.0.0.1.nip.io/jwks",
		"ftp://idp.example.com/jwks",
		"file:///etc/jwks.json",
		"idp.example.com/jwks",
		"https:///jwks",
	} {
		_, err := Parse([]byte(issuer(url, "")))
		if err == nil || !strings.Contains(err.Error(), "jwks_url") {
			t.Errorf("%s: err = %v, want a jwks_url error", url, err)
		}
	}
	// The explicit opt-in allows plain http, and only http(s).
	c, err := Parse([]byte(issuer("http://idp.internal/jwks", ", allow_insecure_jwks_url: true")))
	if err != nil || !c.Issuers[0].AllowInsecureJWKSURL {
		t.Fatalf("opt-in: %v", err)
	}
	if _, err := Parse([]byte(issuer("ftp://idp.internal/jwks", ", allow_insecure_jwks_url: true"))); err == nil {
		t.Fatal("opt-in allowed a non-http scheme")
	}
}

func TestTokenMaxBytes(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token.MaxBytes != 16384 || Default().Token.MaxBytes != 16384 {
		t.Fatalf("default token.max_bytes = %d", c.Token.MaxBytes)
	}
	if c, err = Parse([]byte("token: {max_bytes: 4096}\n")); err != nil || c.Token.MaxBytes != 4096 {
		t.Fatalf("max_bytes 4096: %v %+v", err, c)
	}
	if _, err := Parse([]byte("token: {max_bytes: -1}\n")); err == nil || !strings.Contains(err.Error(), "max_bytes") {
		t.Fatalf("negative max_bytes: %v", err)
	}
}

func TestAdminClientCANeedsTLS(t *testing.T) {
	_, err := Parse([]byte("admin: {client_ca_file: ca.pem}\n"))
	if err == nil || !strings.Contains(err.Error(), "admin.client_ca_file") {
		t.Fatalf("err = %v", err)
	}
}

func TestRedisModes(t *testing.T) {
	c, err := Parse([]byte("use_limits: {store: redis}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.UseLimits.Redis; r.Mode != RedisStandalone || r.WaitTimeout != 100*time.Millisecond || r.WaitReplicas != 0 {
		t.Fatalf("defaults: %+v", r)
	}
	c, err = Parse([]byte(`use_limits:
  store: redis
  redis: {mode: sentinel, addresses: ["s1:26379", "s2:26379"], sentinel_master: mymaster, wait_replicas: 1, wait_timeout: 50ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.UseLimits.Redis; r.Mode != RedisSentinel || len(r.Addresses) != 2 || r.SentinelMaster != "mymaster" ||
		r.WaitReplicas != 1 || r.WaitTimeout != 50*time.Millisecond {
		t.Fatalf("sentinel: %+v", r)
	}
	if _, err := Parse([]byte("use_limits: {store: redis, redis: {mode: cluster, addresses: [\"a:7000\", \"b:7000\"]}}\n")); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}

// TestDecisionCacheSize: absent is the default, 0 turns the cache off, a
// negative size is a fault naming the key.
func TestDecisionCacheSize(t *testing.T) {
	for yaml, want := range map[string]int{"": DefaultDecisionCacheSize, "policy: {decision_cache_size: 0}\n": 0,
		"policy: {decision_cache_size: 25}\n": 25} {
		c, err := Parse([]byte(yaml))
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		if got := c.Policy.DecisionCacheEntries(); got != want {
			t.Errorf("%q: %d entries, want %d", yaml, got, want)
		}
	}
	if _, err := Parse([]byte("policy: {decision_cache_size: -1}\n")); err == nil || !strings.Contains(err.Error(), "policy.decision_cache_size") {
		t.Errorf("negative size: %v", err)
	}
}
