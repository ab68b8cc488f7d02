package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// banner reads the quick-start banner up to its last line.
func banner(t *testing.T, p *process) []string {
	t.Helper()
	var lines []string
	for p.stdout.Scan() {
		line := p.stdout.Text()
		lines = append(lines, line)
		if strings.HasPrefix(line, "More tokens: curl ") {
			go func() { // keep reading so the process never blocks on a full pipe
				for p.stdout.Scan() {
				}
			}()
			return lines
		}
	}
	t.Fatalf("no banner; stdout so far:\n%s\nstderr:\n%s", strings.Join(lines, "\n"), p.stderr.String())
	return nil
}

// after returns the trimmed text after prefix on the first line that has it.
func after(lines []string, prefix string) string {
	for _, l := range lines {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(t, prefix))
		}
	}
	return ""
}

// tokenwise dev --config layers the user's file (their policies, an admin
// token, text logs at debug) over the dev defaults, and what the banner
// promises is what the loaded policy answers.
func TestDevWithConfigPromisesWhatThePolicyAnswers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rego", "closed.rego"), `package envoy.authz

default allow := {"allowed": false, "reason": "closed for the day"}
`)
	writeFile(t, filepath.Join(dir, "conf", "dev.yaml"), "policy: {paths: [../rego/]}\nadmin: {token: dev-admin}\nlog: {level: debug}\n")
	p := startProcess(t, t.TempDir(), "dev", "--config", filepath.Join(dir, "conf", "dev.yaml"),
		"--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0")
	lines := banner(t, p)
	text := strings.Join(lines, "\n")
	if !strings.Contains(text, "with alice's token: denied 403: closed for the day") || !strings.Contains(text, "without a token: denied 401: closed for the day") {
		t.Fatalf("the banner does not say what the policy answers:\n%s", text)
	}
	if strings.Contains(text, "allowed") {
		t.Fatalf("the banner promises an allow the policy never gives:\n%s", text)
	}

	// The printed command's request file gets the printed answer.
	cmd := after(lines, "grpcurl -plaintext -d @ ")
	fields := strings.Fields(cmd) // ADDR METHOD < FILE
	if len(fields) != 4 || fields[2] != "<" || len(cmd) > 200 {
		t.Fatalf("printed command %q", cmd)
	}
	data, err := os.ReadFile(fields[3])
	if err != nil {
		t.Fatal(err)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		t.Fatal(err)
	}
	resp, err := dial(t, fields[0]).Check(context.Background(), req)
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Fatalf("the request file: %v %v", resp, err)
	}

	// The dev issuer's discovery document names its JWKS; mint refuses unknown parameters.
	issuer := after(lines, "issuer:")
	issuer = strings.Fields(issuer)[0]
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	r, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil || doc.Issuer != issuer || doc.JWKSURI != issuer+"/jwks.json" {
		t.Fatalf("discovery: %+v %v", doc, err)
	}
	r2, err := http.Get(issuer + "/token?subject=bob")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 400 {
		t.Fatalf("an unknown mint parameter: %d", r2.StatusCode)
	}

	logs := p.waitLog(t, "readiness changed")
	if !strings.Contains(logs, "level=INFO") || strings.Contains(logs, `{"time"`) || !strings.Contains(logs, `msg="policy loaded"`) || strings.Contains(logs, "dev-admin") {
		t.Fatalf("want text logs, without the admin token:\n%s", logs)
	}
}
