package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
)

func TestCheckQuery(t *testing.T) {
	dir := t.TempDir()
	rego := "package envoy.authz\n\ndefault allow := false\n\nhelper := 1\n"
	if err := os.WriteFile(filepath.Join(dir, "a.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"routes": {"public": true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for query, wantErr := range map[string]string{
		"data.envoy.authz.allow":  "",
		"data.envoy.authz":        "",
		"data.routes.public":      "",
		"data.envoy.authz.alow":   "policy.query data.envoy.authz.alow: no rule or data in " + dir + " defines it; every Check would fail (the policies define data.envoy.authz.allow, data.envoy.authz.helper)",
		"data.envoy.authz2.allow": "no rule or data",
		"data.routes.private":     "no rule or data",
	} {
		e := newEngine(t, config.Policy{Paths: []string{dir}, Query: query}, Options{})
		err := e.CheckQuery()
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: err = %v, want %q", query, err, wantErr)
		}
	}
}
