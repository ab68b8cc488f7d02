package resource

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify"
)

func TestURL(t *testing.T) {
	for resource, want := range map[string]string{
		"https://api.test/":          "https://api.test/.well-known/oauth-protected-resource",
		"https://api.test":           "https://api.test/.well-known/oauth-protected-resource",
		"https://api.test/mcp":       "https://api.test/.well-known/oauth-protected-resource/mcp",
		"https://api.test:8443/a/b/": "https://api.test:8443/.well-known/oauth-protected-resource/a/b/",
		"http://127.0.0.1:8080/":     "http://127.0.0.1:8080/.well-known/oauth-protected-resource",
	} {
		got, err := URL(resource)
		if err != nil || got != want {
			t.Errorf("URL(%q) = %q, %v; want %q", resource, got, err, want)
		}
	}
	if _, err := URL("/relative"); err == nil {
		t.Error("a relative resource has no metadata URL")
	}
}

func TestDocumentAndServes(t *testing.T) {
	issuers := []config.Issuer{{Name: "a", Issuer: "https://idp-a.test/"}, {Name: "b", Issuer: "https://idp-b.test"}}
	m, err := New(config.ResourceMetadata{Resource: "https://api.test/mcp", ScopesSupported: []string{"tools:call"}}, issuers, config.Token{Header: "authorization"})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(m.Document()), &doc); err != nil {
		t.Fatal(err)
	}
	want := `{"authorization_servers":["https://idp-a.test/","https://idp-b.test"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","ES384","ES512","PS256","PS384","PS512","EdDSA"],"resource":"https://api.test/mcp","scopes_supported":["tools:call"]}`
	if b, _ := json.Marshal(doc); string(b) != want {
		t.Errorf("document %s\nwant     %s", b, want)
	}
	if m.Path() != "/.well-known/oauth-protected-resource/mcp" || m.URL() != "https://api.test/.well-known/oauth-protected-resource/mcp" {
		t.Errorf("path %q url %q", m.Path(), m.URL())
	}
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/.well-known/oauth-protected-resource/mcp", true},
		{"GET", "/.well-known/oauth-protected-resource/mcp?x=1", true},
		{"POST", "/.well-known/oauth-protected-resource/mcp", false},
		{"GET", "/.well-known/oauth-protected-resource", false},
		{"GET", "/mcp", false},
	} {
		if got := m.Serves(c.method, c.path); got != c.want {
			t.Errorf("Serves(%s %s) = %v", c.method, c.path, got)
		}
	}
	explicit, _ := New(config.ResourceMetadata{Resource: "https://api.test/", AuthorizationServers: []string{"https://as.test"}}, issuers, config.Token{})
	if explicit.Document() != `{"resource":"https://api.test/","authorization_servers":["https://as.test"],"dpop_signing_alg_values_supported":["ES256","ES384","ES512","PS256","PS384","PS512","EdDSA"]}` {
		t.Errorf("explicit servers: %s", explicit.Document())
	}
	if off, err := New(config.ResourceMetadata{}, issuers, config.Token{}); off != nil || err != nil || off.Serves("GET", "/.well-known/oauth-protected-resource") {
		t.Error("off must be nil and serve nothing")
	}
}

func TestCheckAudience(t *testing.T) {
	m, _ := New(config.ResourceMetadata{Resource: "https://api.test/"}, nil, config.Token{})
	for _, c := range []struct {
		aud  any
		pass bool
	}{
		{"https://api.test/", true},
		{"https://api.test", true},
		{[]any{"other", "https://api.test/"}, true},
		{[]any{"other"}, false},
		{"https://api.test/other", false},
		{nil, false},
		{42, false},
	} {
		tok := &verify.Token{Claims: map[string]any{"aud": c.aud}}
		err := m.CheckAudience(tok)
		var verr *verify.Error
		if (err == nil) != c.pass || (err != nil && (!errors.As(err, &verr) || verr.Reason != ReasonWrongResource)) {
			t.Errorf("aud %v: %v", c.aud, err)
		}
	}
	if m.CheckAudience(nil) != nil {
		t.Error("no token, nothing to check")
	}
	mcp, _ := New(config.ResourceMetadata{Resource: "https://api.test/mcp"}, nil, config.Token{})
	if mcp.CheckAudience(&verify.Token{Claims: map[string]any{"aud": "https://api.test/mcp/"}}) == nil {
		t.Error("only a lone slash after the host is insignificant")
	}
}
