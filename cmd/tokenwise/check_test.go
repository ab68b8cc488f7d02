package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// tokenwise check shows why: the decision log line with its reason on
// stderr, at the level asked for, and the use limit an allow carried.
func TestCheckShowsWhy(t *testing.T) {
	issuer := verifytest.NewIssuer(t)
	dir := project(t, issuer, `package envoy.authz

default allow := {"allowed": false, "reason": "nobody may pass"}

allow := {"allowed": true, "max_uses": 3, "reason": "alice may, thrice"} if input.token.claims.sub == "alice"
`)
	token := issuer.Mint(map[string]any{"sub": "alice"})
	writeFile(t, filepath.Join(dir, "alice.json"), `{"attributes":{"request":{"http":{"method":"GET","path":"/orders","headers":{"authorization":"Bearer `+token+`"}}}}}`)
	writeFile(t, filepath.Join(dir, "anon.json"), `{"attributes":{"request":{"http":{"method":"GET","path":"/orders"}}}}`)
	writeFile(t, filepath.Join(dir, "nohttp.json"), `{"attributes":{"source":{}}}`)

	code, out, errOut := tokenwise(t, dir, "check", "--config", "tokenwise.yaml", "--request", "alice.json")
	if code != 0 || !strings.Contains(out, `"okResponse"`) || !strings.Contains(errOut, `"reason":"alice may, thrice"`) ||
		!strings.Contains(errOut, "allows this token 3 uses (max_uses)") {
		t.Fatalf("allowed with a use limit: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, token) {
		t.Fatal("the token was logged")
	}
	code, out, errOut = tokenwise(t, dir, "check", "--config", "tokenwise.yaml", "--request", "anon.json")
	if code != 0 || !strings.Contains(out, `"Unauthorized"`) || !strings.Contains(errOut, `"reason":"nobody may pass"`) {
		t.Fatalf("denied: exit %d\n%s\n%s", code, out, errOut)
	}
	_, _, errOut = tokenwise(t, dir, "check", "--config", "tokenwise.yaml", "--request", "nohttp.json")
	if !strings.Contains(errOut, "check request has no attributes.request.http") {
		t.Fatalf("a request without http: %s", errOut)
	}
	_, _, errOut = tokenwise(t, dir, "check", "--config", "tokenwise.yaml", "--request", "anon.json", "--log-level", "error")
	if strings.Contains(errOut, `"decision"`) {
		t.Fatalf("--log-level error still logs decisions: %s", errOut)
	}
}

// A JWKS that does not load is named, with its cause.
func TestCheckNamesAJWKSThatDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policies", "authz.rego"), allowAlice)
	writeFile(t, filepath.Join(dir, "tokenwise.yaml"), "issuers:\n  - {name: corp, issuer: https://idp/, jwks_url: http://127.0.0.1:1/jwks.json}\n")
	writeFile(t, filepath.Join(dir, "anon.json"), `{"attributes":{"request":{"http":{"method":"GET","path":"/"}}}}`)
	code, _, errOut := tokenwise(t, dir, "check", "--config", "tokenwise.yaml", "--request", "anon.json", "--jwks-wait", "3s") // a bound: the first fetch fails at once
	if code != 0 || !strings.Contains(errOut, "jwks fetch failed") || !strings.Contains(errOut, `"issuer":"corp"`) ||
		!strings.Contains(errOut, "connection refused") || !strings.Contains(errOut, "corp http://127.0.0.1:1/jwks.json") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

// serve logs the risky settings validate warns about, and starts anyway.
func TestServeLogsWarnings(t *testing.T) {
	dir := project(t, verifytest.NewIssuer(t), allowAlice)
	config := filepath.Join(dir, "tokenwise.yaml")
	writeFile(t, config, readFile(t, config)+"use_limits: {on_store_error: allow}\n")
	p := startProcess(t, dir, "serve", "--config", "tokenwise.yaml")
	logs := p.waitLog(t, "readiness changed")
	if !strings.Contains(logs, `"msg":"risky configuration"`) || !strings.Contains(logs, "use_limits.on_store_error: allow") {
		t.Fatalf("no warning logged:\n%s", logs)
	}
}
