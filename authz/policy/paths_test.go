package policy

import (
	"context"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/tokenwise/tokenwise/authz/config"
)

// loadReads compiles one policy module and returns what it can read.
func loadReads(t *testing.T, module string) *prepared {
	t.Helper()
	cfg := config.Default().Policy
	cfg.Paths = []string{"."}
	e, err := New(context.Background(), cfg, Options{FS: fstest.MapFS{"p.rego": {Data: []byte(module)}}})
	if err != nil {
		t.Fatalf("%s: %v", module, err)
	}
	return e.current.Load()
}

func TestReadPaths(t *testing.T) {
	const pkg = "package envoy.authz\n\n"
	for _, c := range []struct {
		name, rules string
		want        []string
		// nondeterministic is the built-in that makes the policy uncacheable.
		nondeterministic string
	}{
		{"constant", `allow := true`, nil, ""},
		{"one field", `allow if input.attributes.request.http.method == "GET"`,
			[]string{"input.attributes.request.http.method"}, ""},
		{"index reads the array", `allow if input.parsed_path[0] == "x"`, []string{"input.parsed_path"}, ""},
		{"variable key reads the prefix", `allow if { some k; input.attributes.request.http.headers[k] == "y" }`,
			[]string{"input.attributes.request.http.headers"}, ""},
		{"computed key reads the prefix", `allow if input.token.claims[lower("SUB")] == "a"`,
			[]string{"input.token.claims"}, ""},
		{"brackets", `allow if input["token"]["claims"].sub == "a"`, []string{"input.token.claims.sub"}, ""},
		{"several", "allow if {\n input.parsed_path == [\"a\"]\n \"r\" in input.token.scopes\n input.attributes.request.http.headers[\"x-a\"] == \"1\"\n}",
			[]string{"input.attributes.request.http.headers.x-a", "input.parsed_path", "input.token.scopes"}, ""},
		{"prefix wins", "allow if {\n input.token.claims.sub == \"a\"\n input.token.claims != {}\n}",
			[]string{"input.token.claims"}, ""},
		{"alias of a part", "allow if {\n h := input.attributes.request.http\n h.method == \"GET\"\n}",
			[]string{"input.attributes.request.http"}, ""},
		{"import", "import input.attributes.request.http as h\n\nallow if h.method == \"GET\"",
			[]string{"input.attributes.request.http.method"}, ""},
		{"function argument", "f(t) := t.sub\n\nallow if f(input.token.claims) == \"a\"",
			[]string{"input.token.claims"}, ""},
		{"every", `allow if every s in input.token.scopes { s != "" }`, []string{"input.token.scopes"}, ""},
		{"comprehension", `allow if count([x | x := input.parsed_query.a[_]]) > 0`, []string{"input.parsed_query.a"}, ""},
		{"input as a value", "allow if {\n x := input\n x.token\n}", []string{"input"}, ""},
		{"walk", `allow if { some p, v; walk(input, [p, v]); v == "x" }`, []string{"input"}, ""},
		{"json.marshal", `allow if json.marshal(input) != ""`, []string{"input"}, ""},
		{"object.get", `allow if object.get(input, ["token", "issuer"], "") == "corp"`, []string{"input"}, ""},
		{"print", "allow if {\n print(input)\n input.token\n}", []string{"input"}, ""},
		{"with input", "r if input.token\n\nallow if r with input as {\"token\": true}", []string{"input"}, ""},
		{"with input part", "r if input.token\n\nallow if r with input.token as true", []string{"input"}, ""},
		{"time", `allow if time.now_ns() > 0`, nil, "time.now_ns"},
		{"http.send", `allow if http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200`, nil, "http.send"},
		{"uuid in a helper", "id := uuid.rfc4122(\"x\")\n\nallow if id != input.token.claims.jti",
			[]string{"input.token.claims.jti"}, "uuid.rfc4122"},
		{"rand", `allow if rand.intn("x", 10) > 4`, nil, "rand.intn"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := loadReads(t, pkg+c.rules+"\n")
			got := p.reads.root.paths()
			want := c.want
			if want == nil {
				want = []string(nil)
			}
			if !slices.Equal(got, want) {
				t.Errorf("paths %q, want %q", got, want)
			}
			if p.reads.nondeterministic != c.nondeterministic {
				t.Errorf("nondeterministic %q, want %q", p.reads.nondeterministic, c.nondeterministic)
			}
			wantCache := c.nondeterministic == "" && !slices.Equal(want, []string{"input"})
			if (p.cache != nil) != wantCache {
				t.Errorf("cache on: %v, want %v (%s)", p.cache != nil, wantCache, p.cacheState())
			}
		})
	}
}

// TestReadPathsRecomputedOnReload: a reload's analysis is the new policy's.
func TestReadPathsRecomputedOnReload(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/p.rego"
	writeFile(t, file, "package envoy.authz\n\nallow if input.parsed_path[0] == \"a\"\n")
	e, err := New(context.Background(), policyConfig(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.current.Load().reads.root.paths(); !slices.Equal(got, []string{"input.parsed_path"}) {
		t.Fatalf("before: %q", got)
	}
	writeFile(t, file, "package envoy.authz\n\nallow if time.now_ns() > input.token.claims.iat\n")
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := e.current.Load()
	if got := p.reads.root.paths(); !slices.Equal(got, []string{"input.token.claims.iat"}) || p.cache != nil {
		t.Fatalf("after: %q, cache %v", got, p.cache != nil)
	}
}

func TestDecisionCacheSizeZeroIsOff(t *testing.T) {
	cfg := config.Default().Policy
	cfg.Paths = []string{"."}
	zero := 0
	cfg.DecisionCacheSize = &zero
	e, err := New(context.Background(), cfg, Options{FS: fstest.MapFS{"p.rego": {Data: []byte("package envoy.authz\n\nallow := true\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := e.current.Load(); p.cache != nil || p.cacheState() != "off: policy.decision_cache_size is 0" {
		t.Fatalf("cache %v: %s", p.cache != nil, p.cacheState())
	}
}
