package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tokenwise/tokenwise/authz/verify/verifytest"
)

// An operator revokes a leaked token with the CLI against a running
// `tokenwise serve` whose admin token comes from the environment.
func TestAdminRevokesATokenOnARunningServer(t *testing.T) {
	t.Setenv("TOKENWISE_ADMIN_TOKEN", "cli-admin-secret")
	issuer := verifytest.NewIssuer(t)
	dir := project(t, issuer, allowAlice)
	config := filepath.Join(dir, "tokenwise.yaml")
	writeFile(t, config, readFile(t, config)+"admin:\n  token: ${TOKENWISE_ADMIN_TOKEN}\n")
	p := startProcess(t, dir, "serve", "--config", "tokenwise.yaml")
	addr := grpcAddr.FindStringSubmatch(p.waitLog(t, "readiness changed"))[1]
	client := dial(t, addr)
	token := issuer.Mint(map[string]any{"sub": "alice", "jti": "leaked-42"})
	allowedNow := func() bool {
		resp, err := client.Check(context.Background(), checkRequest("/orders", token))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode() == int32(codes.OK)
	}
	if !allowedNow() {
		t.Fatal("the token is refused before any revocation")
	}

	admin := func(args ...string) (int, string, string) {
		return tokenwise(t, dir, append([]string{"admin", args[0], "--server", addr}, args[1:]...)...)
	}
	if code, out, errOut := admin("revoke-token", "--issuer", "corp", "--jti", "leaked-42"); code != 0 || !strings.Contains(out, "revoked token:corp:leaked-42 until ") {
		t.Fatalf("revoke-token: exit %d\n%s%s", code, out, errOut)
	}
	if allowedNow() {
		t.Fatal("the revoked token is still allowed")
	}
	if code, out, errOut := admin("list"); code != 0 || !strings.Contains(out, "token:corp:leaked-42") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := admin("uses", "--issuer", "corp", "--jti", "leaked-42"); code != 0 || !strings.Contains(out, "uses: 0") || !strings.Contains(out, "revoked until") {
		t.Fatalf("uses: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := admin("revoke-subject", "--issuer", "corp", "--subject", "bob", "--before", "2020-01-02T03:04:05Z"); code != 0 || !strings.Contains(out, "tokens issued before 2020-01-02T03:04:05Z") {
		t.Fatalf("revoke-subject: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := admin("list", "--token", "wrong"); code == 0 || !strings.Contains(errOut, "PermissionDenied") {
		t.Fatalf("a wrong --token: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := admin("revoke-token", "--issuer", "corp"); code == 0 || !strings.Contains(errOut, "--jti is required") {
		t.Fatalf("a missing --jti: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := admin("unrevoke", "--id", "token:corp:leaked-42"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("unrevoke: exit %d\n%s%s", code, out, errOut)
	}
	if !allowedNow() {
		t.Fatal("the token is still refused after unrevoke")
	}
	if strings.Contains(p.stderr.String(), "cli-admin-secret") || !strings.Contains(p.stderr.String(), `"admin call"`) {
		t.Fatalf("admin calls must be logged without the admin token:\n%s", p.stderr.String())
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
