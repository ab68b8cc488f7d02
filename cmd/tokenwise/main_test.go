package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokenwise/tokenwise/authz/childproc"
	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// binary is tokenwise built once for these tests, run as a user runs it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenwise-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tokenwise")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tokenwise: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tokenwise runs the binary to completion and returns its exit code and output.
func tokenwise(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// project writes a config and a policy into a fresh directory.
func project(t *testing.T, issuer *verifytest.Issuer, rego string) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "policies", "authz.rego"), rego)
	writeFile(t, filepath.Join(dir, "tokenwise.yaml"), fmt.Sprintf(`grpc: {address: 127.0.0.1:0}
http: {address: 127.0.0.1:0}
issuers:
  - name: corp
    issuer: %s
    jwks_url: %s
policy:
  paths: [policies/]
  timeout: 10s    # the drain test's policy waits on a slow service for a second
forward:
  claims_to_headers: {sub: x-user-id}
`, issuer.URL(), issuer.JWKSURL()))
	return dir
}

const allowAlice = "package envoy.authz\n\ndefault allow := false\n\nallow if input.token.claims.sub == \"alice\"\n"

func TestValidate(t *testing.T) {
	dir := project(t, verifytest.NewIssuer(t), allowAlice)
	if code, out, errOut := tokenwise(t, dir, "validate", "--config", "tokenwise.yaml"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("a good project: exit %d, %s %s", code, out, errOut)
	}

	faults := map[string]struct{ file, text, want string }{
		"unknown key":     {"tokenwise.yaml", "grpc: {adress: x}\n", "adress"},
		"broken policy":   {"policies/authz.rego", "package envoy.authz\n\nallow := {{{\n", "authz.rego"},
		"HMAC algorithm":  {"tokenwise.yaml", "issuers: [{name: a, issuer: i, jwks_url: https://x/, algorithms: [HS256]}]\n", "HS256"},
		"missing TLS key": {"tokenwise.yaml", "grpc: {tls: {cert_file: nowhere.pem, key_file: nowhere-key.pem}}\npolicy: {paths: [policies/]}\n" + oneIssuer, "nowhere.pem"},
		"no issuers":      {"tokenwise.yaml", "policy: {paths: [policies/]}\n", "issuers: none configured"},
		"query names no rule": {"tokenwise.yaml", "policy: {paths: [policies/], query: data.envoy.authz.alow}\n" + oneIssuer,
			"policy.query data.envoy.authz.alow: no rule or data"},
		"unset variable": {"tokenwise.yaml", "issuers:\n  - {name: a, issuer: https://i/, jwks_url: https://i/jwks, audiences: [\"${TW_CLI_TEST_UNSET}\"]}\n",
			"issuers[0].audiences[0] (line 2): ${TW_CLI_TEST_UNSET} is not set"},
		"near key":      {"tokenwise.yaml", "issuers:\n  - {name: a, issuer: https://i/, jwks_url: https://i/jwks, audience: [x]}\n", "did you mean audiences?"},
		"bare duration": {"tokenwise.yaml", "issuers:\n  - {name: a, issuer: https://i/, jwks_url: https://i/jwks, leeway: 30}\n", "issuers[0].leeway (line 2): 30 is a number without a unit"},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			dir := project(t, verifytest.NewIssuer(t), allowAlice)
			writeFile(t, filepath.Join(dir, f.file), f.text)
			code, _, errOut := tokenwise(t, dir, "validate", "--config", "tokenwise.yaml")
			if code == 0 || !strings.Contains(errOut, f.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q: want non-zero and one line naming %q", code, errOut, f.want)
			}
		})
	}
}

const oneIssuer = "issuers:\n  - {name: a, issuer: https://i/, jwks_url: https://i/jwks}\n"

// Risky settings that work are warnings: validate prints them and passes.
func TestValidateWarns(t *testing.T) {
	dir := project(t, verifytest.NewIssuer(t), allowAlice)
	writeFile(t, filepath.Join(dir, "tokenwise.yaml"), `issuers:
  - {name: a, issuer: https://i/, jwks_url: http://idp.internal/jwks, allow_insecure_jwks_url: true, leeway: 1h}
token: {query_parameter: access_token}
use_limits: {on_store_error: allow}
`)
	code, out, errOut := tokenwise(t, dir, "validate", "--config", "tokenwise.yaml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"leeway 1h0m0s is over 5m0s", "allow_insecure_jwks_url", "on_store_error: allow", "query_parameter"} {
		if !strings.Contains(errOut, "tokenwise: warning: tokenwise.yaml: ") || !strings.Contains(errOut, want) {
			t.Errorf("no warning about %q:\n%s", want, errOut)
		}
	}
}

func TestServeRefusesATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := project(t, verifytest.NewIssuer(t), allowAlice)
	code, _, errOut := tokenwise(t, dir, "serve", "--config", "tokenwise.yaml", "--grpc-address", taken.Addr().String())
	if code == 0 || !strings.Contains(errOut, "address already in use") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestCheckAnswersOneRequestOffline(t *testing.T) {
	issuer := verifytest.NewIssuer(t)
	dir := project(t, issuer, allowAlice)
	token := issuer.Mint(map[string]any{"sub": "alice"})
	writeFile(t, filepath.Join(dir, "req.json"), `{"attributes":{"request":{"http":{"method":"GET","path":"/orders","headers":{"authorization":"Bearer `+token+`"}}}}}`)
	code, out, errOut := tokenwise(t, dir, "check", "--config", "tokenwise.yaml", "--request", "req.json")
	if code != 0 || !strings.Contains(out, `"okResponse"`) || !strings.Contains(out, `"x-user-id"`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "anon.json"), `{"attributes":{"request":{"http":{"method":"GET","path":"/orders"}}}}`)
	if _, out, _ := tokenwise(t, dir, "check", "--config", "tokenwise.yaml", "--request", "anon.json"); !strings.Contains(out, `"Unauthorized"`) {
		t.Fatalf("anonymous request: %s", out)
	}
}

// process is a tokenwise process running in the background.
type process struct {
	cmd    *exec.Cmd
	stdout *bufio.Scanner
	stderr *childproc.Output
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
}

func startProcess(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stdout: bufio.NewScanner(out), stderr: &childproc.Output{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// waitLog waits for a JSON log line on stderr containing s and returns the stderr so far.
func (p *process) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if text := p.stderr.String(); strings.Contains(text, s) {
			return text
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q in stderr:\n%s", s, p.stderr.String())
	return ""
}

var grpcAddr = regexp.MustCompile(`"grpc":"([^"]+)"`)

func dial(t *testing.T, addr string) authv3.AuthorizationClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

func checkRequest(path, token string) *authv3.CheckRequest {
	headers := map[string]string{":method": "GET", ":path": path}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Headers: headers},
	}}}
}

// SIGTERM lets a Check that is in flight finish, then the process exits 0.
func TestServeDrainsInFlightChecksOnSIGTERM(t *testing.T) {
	var arrived atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived.Store(true)
		time.Sleep(time.Second)
		w.Header().Set("content-type", "application/json")
		fmt.Fprint(w, `{"ok": true}`)
	}))
	defer slow.Close()
	issuer := verifytest.NewIssuer(t)
	// A policy that asks a slow service keeps its Check in flight for a second.
	dir := project(t, issuer, fmt.Sprintf(`package envoy.authz

default allow := false

allow if http.send({"method": "GET", "url": %q}).body.ok
`, slow.URL))
	p := startProcess(t, dir, "serve", "--config", "tokenwise.yaml")
	logs := p.waitLog(t, "readiness changed")
	client := dial(t, grpcAddr.FindStringSubmatch(logs)[1])

	answered := make(chan *authv3.CheckResponse, 1)
	go func() {
		resp, err := client.Check(context.Background(), checkRequest("/slow", issuer.Mint(map[string]any{"sub": "alice"})))
		if err != nil {
			t.Errorf("the in-flight Check failed: %v", err)
		}
		answered <- resp
	}()
	for !arrived.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if resp := <-answered; resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Errorf("the in-flight Check was not allowed: %v", resp)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tokenwise did not exit after SIGTERM")
	}
}

// The quick start, as a new user meets it: a token printed, and the check
// it suggests allowed with x-user-id, and refused without the token.
func TestDevQuickStart(t *testing.T) {
	p := startProcess(t, t.TempDir(), "dev", "--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0")
	var token, grpcAddress, mintURL string
	for p.stdout.Scan() && mintURL == "" {
		line := strings.TrimSpace(p.stdout.Text())
		switch {
		case strings.HasPrefix(line, "eyJ"):
			token = line
		case strings.HasPrefix(line, "gRPC (ext_authz v3):"):
			grpcAddress = strings.TrimSpace(strings.TrimPrefix(line, "gRPC (ext_authz v3):"))
		case strings.HasPrefix(line, "More tokens: curl "):
			mintURL = strings.Trim(strings.TrimPrefix(line, "More tokens: curl "), "'")
		}
	}
	if token == "" || grpcAddress == "" || mintURL == "" {
		t.Fatalf("the quick start did not print a token, the gRPC address and a mint URL (stderr: %s)", p.stderr.String())
	}
	go func() { // keep reading so the process never blocks on a full pipe
		for p.stdout.Scan() {
		}
	}()
	p.waitLog(t, "readiness changed")
	client := dial(t, grpcAddress)

	resp, err := client.Check(context.Background(), checkRequest("/orders/42", token))
	if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) || !hasHeader(resp, "x-user-id", "alice") {
		t.Fatalf("the printed token: %v %v", resp, err)
	}
	resp, err = client.Check(context.Background(), checkRequest("/orders/42", ""))
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("without a token: %v %v", resp, err)
	}

	// A one-time token from the mint endpoint works once.
	oneTime := mint(t, strings.Replace(mintURL, "sub=bob", "sub=carol", 1))
	first, _ := client.Check(context.Background(), checkRequest("/orders/1", oneTime))
	second, _ := client.Check(context.Background(), checkRequest("/orders/1", oneTime))
	if first.GetStatus().GetCode() != int32(codes.OK) || second.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("one-time token: first %v, second %v", first, second)
	}
}

func mint(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("mint: %d %s", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

func hasHeader(resp *authv3.CheckResponse, name, value string) bool {
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == name && h.GetHeader().GetValue() == value {
			return true
		}
	}
	return false
}
