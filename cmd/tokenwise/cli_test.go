package main

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// Every command explains itself: --help prints its usage and its flags on
// stdout and exits 0.
func TestEveryCommandHasHelp(t *testing.T) {
	cases := []struct {
		args  []string
		flags []string
	}{
		{[]string{"--help"}, []string{"serve", "dev", "validate", "check", "admin", "bench", "version", "completion"}},
		{[]string{"serve", "--help"}, []string{"--config", "--grpc-address", "--http-address", "--log-level"}},
		{[]string{"dev", "--help"}, []string{"--config", "--grpc-address", "--http-address", "--log-level", "--log-format"}},
		{[]string{"validate", "--help"}, []string{"--config"}},
		{[]string{"check", "--help"}, []string{"--config", "--request", "--jwks-wait", "--log-level"}},
		{[]string{"admin", "--help"}, []string{"revoke-token", "revoke-subject", "uses", "list", "unrevoke", "--server", "--token"}},
		{[]string{"admin", "revoke-token", "--help"}, []string{"--issuer", "--jti", "--until", "--server", "--ca-file"}},
		{[]string{"admin", "revoke-subject", "--help"}, []string{"--issuer", "--subject", "--before", "--until"}},
		{[]string{"admin", "uses", "--help"}, []string{"--issuer", "--jti"}},
		{[]string{"admin", "list", "--help"}, []string{"--issuer"}},
		{[]string{"admin", "unrevoke", "--help"}, []string{"--id"}},
		{[]string{"bench", "--help"}, []string{"--scenarios", "--json", "--cpuprofile", "one-time-redis"}},
		{[]string{"version", "--help"}, []string{"Usage:"}},
		{[]string{"dpop-proof", "--help"}, []string{"--key", "--url", "--method", "--token", "--nonce", "--jkt"}},
		{[]string{"completion", "--help"}, []string{"bash", "zsh", "fish"}},
		{[]string{"help", "check"}, []string{"--request"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errOut := tokenwise(t, "", c.args...)
			if code != 0 || errOut != "" || !strings.Contains(out, "Usage:") {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
			}
			for _, f := range c.flags {
				if !strings.Contains(out, f) {
					t.Errorf("help lacks %q:\n%s", f, out)
				}
			}
		})
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := tokenwise(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, "tokenwise") || len(out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), errOut)
		}
	}
}

func TestUsageFaults(t *testing.T) {
	if code, _, errOut := tokenwise(t, ""); code != 2 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no command: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"nope"}, {"serve", "--nope"}, {"serve", "extra"}, {"validate"}, {"check", "--config", "x.yaml"}, {"admin"}} {
		code, _, errOut := tokenwise(t, "", args...)
		if code != 1 || !strings.HasPrefix(errOut, "tokenwise: ") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 && args[0] != "admin" {
			t.Errorf("%v: exit %d, stderr %q: want 1 and one line", args, code, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := tokenwise(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "tokenwise ") || strings.Contains(out, "tokenwise dev") {
		t.Fatalf("version: %d %q", code, out)
	}
	// The Dockerfile's way: a version set at build time.
	bin := filepath.Join(t.TempDir(), "tokenwise")
	if b, err := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	out2, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out2), "tokenwise v1.2.3-test (go") {
		t.Fatalf("version with ldflags: %q %v", out2, err)
	}
}

func TestVersionOf(t *testing.T) {
	vcs := func(settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	cases := []struct {
		ldflags string
		bi      *debug.BuildInfo
		want    string
	}{
		{"v9", vcs(), "v9"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"", vcs("vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), "0123456789ab"},
		{"", vcs("vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), "0123456789ab-dirty"},
		{"", vcs(), "(devel)"},
		{"", nil, "(devel)"},
	}
	for _, c := range cases {
		if got := versionOf(c.ldflags, c.bi); got != c.want {
			t.Errorf("versionOf(%q, %+v) = %q, want %q", c.ldflags, c.bi, got, c.want)
		}
	}
}
