package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each fault is one line naming the YAML path and what to write instead,
// never a Go type or a yaml tag.
func TestFaultsInTheUsersWords(t *testing.T) {
	const issuer = "issuers:\n  - name: corp\n    issuer: https://idp/\n    jwks_url: https://idp/jwks\n"
	cases := map[string]struct{ yaml, want string }{
		"near key":          {issuer + "    audience: [orders]\n", `issuers[0].audience (line 5): unknown key "audience"; did you mean audiences?`},
		"near top key":      {"isuers: []\n", "did you mean issuers?"},
		"far key":           {"grpc: {zzzzzz: 1}\n", "known keys here: address, max_concurrent_streams, max_receive_bytes, reflection, tls"},
		"misplaced key":     {"leeway: 30s\n", `leeway (line 1): unknown key "leeway"; it belongs under issuers[]`},
		"misplaced nested":  {"grpc: {cert_file: a.pem}\n", "it belongs under grpc.tls"},
		"bare duration":     {issuer + "    leeway: 30\n", "issuers[0].leeway (line 5): 30 is a number without a unit; a duration needs one, such as 30s"},
		"word duration":     {issuer + "    leeway: 30 seconds\n", `issuers[0].leeway (line 5): "30 seconds" is not a duration`},
		"bool":              {"grpc: {reflection: 5}\n", `grpc.reflection (line 1): want true or false, got "5"`},
		"int":               {"use_limits: {redis: {db: first}}\n", `use_limits.redis.db (line 1): want a whole number, got "first"`},
		"uint":              {"grpc: {max_concurrent_streams: -1}\n", "want a whole number, 0 or more"},
		"float":             {"tracing: {sample_ratio: half}\n", "tracing.sample_ratio"},
		"list for a map":    {"issuers: {name: corp}\n", `issuers (line 1): want a list (items each starting with "- "), got keys and values`},
		"scalar for a list": {issuer + "    audiences: orders\n", `issuers[0].audiences (line 5): want a list ([a, b]), got "orders"`},
		"map for a scalar":  {"grpc: {address: {host: x}}\n", "grpc.address (line 1): want a single value, got keys and values"},
		"syntax":            {"grpc: [\n", "line"},
		"duplicate key":     {"grpc: {address: a:1}\ngrpc: {address: b:1}\n", "already defined"},
		"log format":        {"log: {format: xml}\n", `log.format "xml": want text or json`},
		"issuer path":       {"issuers:\n  - {name: a, issuer: i, jwks_url: https://i/jwks}\n  - {name: a, issuer: j, jwks_url: https://i/jwks}\n", "issuers[1] (a): name used twice"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
			for _, leak := range []string{"\n", "!!", "config.", "time.Duration", "[]string", "struct", "int64", "uint32", "*bool"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q contains %q", err, leak)
				}
			}
		})
	}
}

// YAML 1.1 booleans still decode into a bool, as yaml.v3 allows.
func TestYAML11Booleans(t *testing.T) {
	c, err := Parse([]byte("grpc: {reflection: off}\nforward: {remove_authorization: yes}\n"))
	if err != nil || c.GRPC.ReflectionEnabled() || !c.Forward.RemoveAuthorization {
		t.Fatalf("%v %+v", err, c)
	}
}

// Anchors, aliases and merge keys work, and merged keys are checked too.
func TestMergeKeys(t *testing.T) {
	c, err := Parse([]byte(`x-defaults: &defaults {leeway: 10s, audiences: [api]}
issuers:
  - {<<: *defaults, name: a, issuer: https://a/, jwks_url: https://a/jwks}
`))
	if err == nil {
		t.Fatalf("an unknown top-level key passed: %+v", c)
	}
	c, err = Parse([]byte(`issuers:
  - &first {name: a, issuer: https://a/, jwks_url: https://a/jwks, leeway: 10s, audiences: [api]}
  - {<<: *first, name: b, issuer: https://b/}
`))
	if err != nil || c.Issuers[1].Leeway != 10*time.Second || c.Issuers[1].Audiences[0] != "api" || c.Issuers[1].Name != "b" {
		t.Fatalf("merge: %v %+v", err, c)
	}
	_, err = Parse([]byte(`issuers:
  - &first {name: a, issuer: https://a/, jwks_url: https://a/jwks, leeway: 10s}
  - {<<: [*first, {audience: x}], name: b, issuer: https://b/}
`))
	if err == nil || !strings.Contains(err.Error(), "did you mean audiences?") {
		t.Fatalf("a merged typo: %v", err)
	}
}

func TestLoadNamesFileAndPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenwise.yaml")
	writeConfig(t, path, "issuers:\n  - {name: corp, issuer: https://i/, jwks_url: https://i/jwks, audience: x}\n")
	_, err := Load(path)
	want := "config " + path + ": issuers[0].audience (line 2): unknown key \"audience\"; did you mean audiences?"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

func TestVariables(t *testing.T) {
	t.Setenv("TW_SET", "orders-api")
	t.Setenv("TW_EMPTY", "")
	t.Setenv("TW_DB", "3")
	t.Setenv("TW_TRICK", "x\nbogus: 1")
	c, err := Parse([]byte(`# ${TW_IN_A_COMMENT} is not expanded
issuers:
  - name: corp
    issuer: https://idp/
    jwks_url: https://idp/jwks
    audiences: ["${TW_SET}", "${TW_UNSET_A:-fallback}", "${TW_UNSET_B:-}", "${TW_EMPTY:-empty-default}", "a-${TW_SET}-b"]
    typ: ${TW_TRICK}
use_limits:
  redis: {password: ${TW_DB}}
  max_ttl: ${TW_UNSET_TTL:-2h}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Issuers[0].Audiences
	want := []string{"orders-api", "fallback", "", "empty-default", "a-orders-api-b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audiences = %q, want %q", got, want)
	}
	if c.Issuers[0].Typ != "x\nbogus: 1" {
		t.Errorf("a variable's content changed the file's structure: typ = %q", c.Issuers[0].Typ)
	}
	if c.UseLimits.MaxTTL != 2*time.Hour || c.UseLimits.Redis.Password != "3" {
		t.Errorf("use_limits = %+v", c.UseLimits)
	}

	_, err = Parse([]byte("issuers:\n  - name: corp\n    issuer: https://idp/\n    jwks_url: https://idp/jwks\n    audiences: [\"${TW_ORDERS_AUDIENCE}\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "issuers[0].audiences[0] (line 5): ${TW_ORDERS_AUDIENCE} is not set") ||
		!strings.Contains(err.Error(), "${TW_ORDERS_AUDIENCE:-value}") {
		t.Fatalf("unset variable: %v", err)
	}
}

// A typed value from a variable is checked like a written one.
func TestVariableValuesAreTyped(t *testing.T) {
	t.Setenv("TW_DB", "3")
	c, err := Parse([]byte("use_limits: {redis: {db: ${TW_DB}}}\n"))
	if err != nil || c.UseLimits.Redis.DB != 3 {
		t.Fatalf("db from a variable: %v %+v", err, c)
	}
	t.Setenv("TW_DB", "three")
	if _, err := Parse([]byte("use_limits: {redis: {db: ${TW_DB}}}\n")); err == nil || !strings.Contains(err.Error(), "use_limits.redis.db") {
		t.Fatalf("a word for db: %v", err)
	}
}

func TestRelativePathsAreRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conf", "tokenwise.yaml")
	writeConfig(t, path, `grpc:
  tls: {cert_file: certs/tls.pem, key_file: certs/tls-key.pem, client_ca_file: /abs/ca.pem}
policy:
  paths: [policies/, ../common-rego, /opt/rego]
admin:
  client_ca_file: admin-ca.pem
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf")
	wantPaths := []string{filepath.Join(conf, "policies"), filepath.Join(dir, "common-rego"), "/opt/rego"}
	if strings.Join(c.Policy.Paths, "|") != strings.Join(wantPaths, "|") {
		t.Errorf("policy.paths = %q, want %q", c.Policy.Paths, wantPaths)
	}
	if c.GRPC.TLS.CertFile != filepath.Join(conf, "certs/tls.pem") || c.GRPC.TLS.KeyFile != filepath.Join(conf, "certs/tls-key.pem") ||
		c.GRPC.TLS.ClientCAFile != "/abs/ca.pem" || c.Admin.ClientCAFile != filepath.Join(conf, "admin-ca.pem") {
		t.Errorf("tls = %+v, admin = %+v", c.GRPC.TLS, c.Admin)
	}

	// A default is not in the file: it stays as it is.
	writeConfig(t, path, "log: {level: debug}\n")
	if c, err = Load(path); err != nil || c.Policy.Paths[0] != "policies/" {
		t.Fatalf("default policy.paths = %v (%v)", c.Policy.Paths, err)
	}
	// Parse has no file: paths stay as written.
	if c, err = Parse([]byte("policy: {paths: [rego/]}\n")); err != nil || c.Policy.Paths[0] != "rego/" {
		t.Fatalf("Parse: %v %v", c.Policy.Paths, err)
	}
}

func TestLoadOverKeepsWhatTheFileLeavesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenwise.yaml")
	writeConfig(t, path, "admin: {token: s3cret}\nforward: {claims_to_headers: {email: x-email}}\n")
	base := Default()
	base.Log.Format = "text"
	base.Forward.ClaimsToHeaders = map[string]string{"sub": "x-user-id"}
	c, err := LoadOver(path, base)
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Token != "s3cret" || c.Log.Format != "text" || c.Forward.ClaimsToHeaders["sub"] != "x-user-id" || c.Forward.ClaimsToHeaders["email"] != "x-email" {
		t.Fatalf("layered = %+v", c)
	}
	if !c.Sets("admin", "token") || c.Sets("policy", "paths") || Default().Sets("admin") {
		t.Error("Sets does not tell what the file set")
	}
}

func TestRequireIssuers(t *testing.T) {
	c, err := Parse([]byte("grpc: {address: 127.0.0.1:1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RequireIssuers(); err == nil || !strings.Contains(err.Error(), "issuers") {
		t.Fatalf("no issuers: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	safe, err := Parse([]byte("issuers:\n  - {name: corp, issuer: https://i/, jwks_url: http://127.0.0.1:1/jwks, allow_insecure_jwks_url: true, leeway: 5m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := safe.Warnings(); len(w) != 0 {
		t.Errorf("a safe configuration warns: %q", w)
	}
	risky, err := Parse([]byte(`issuers:
  - {name: corp, issuer: https://i/, jwks_url: http://idp.internal/jwks, allow_insecure_jwks_url: true, leeway: 10m}
token: {query_parameter: access_token}
use_limits: {on_store_error: allow}
`))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(risky.Warnings(), "\n")
	for _, want := range []string{"issuers[0] (corp).leeway 10m0s is over 5m0s", "issuers[0] (corp).allow_insecure_jwks_url",
		"use_limits.on_store_error: allow", `token.query_parameter "access_token"`} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
}

func TestNearest(t *testing.T) {
	known := []string{"audiences", "algorithms", "issuer", "jwks_url", "leeway", "name"}
	for key, want := range map[string]string{"audience": "audiences", "algorithm": "algorithms", "jwks": "jwks_url", "Leeway": "leeway", "nmae": "name"} {
		if got := nearest(key, known); len(got) != 1 || got[0] != want {
			t.Errorf("nearest(%q) = %q, want %q", key, got, want)
		}
	}
	if got := nearest("colour", known); len(got) != 0 {
		t.Errorf("nearest(colour) = %q", got)
	}
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
