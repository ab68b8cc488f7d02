package config

import (
	"strings"
	"testing"
)

// TestDiscoveryConfig covers issuers that name no jwks_url: discovery is
// read from discovery_url or the issuer's well-known URL, under the same
// https rule as jwks_url.
func TestDiscoveryConfig(t *testing.T) {
	ok := []struct {
		name, yaml, endpoint string
	}{
		{"issuer only", `{name: a, issuer: "https://idp.example.com/"}`, "https://idp.example.com/.well-known/openid-configuration"},
		{"issuer with a path", `{name: a, issuer: "https://idp.example.com/realms/x"}`, "https://idp.example.com/realms/x/.well-known/openid-configuration"},
		{"discovery_url", `{name: a, issuer: "urn:corp", discovery_url: "https://idp.example.com/oidc"}`, "https://idp.example.com/oidc"},
		{"loopback http", `{name: a, issuer: "http://127.0.0.1:8000"}`, "http://127.0.0.1:8000/.well-known/openid-configuration"},
		{"insecure allowed", `{name: a, issuer: "http://idp.internal", allow_insecure_jwks_url: true}`, "http://idp.internal/.well-known/openid-configuration"},
		{"jwks_url wins", `{name: a, issuer: "https://idp.example.com", jwks_url: "https://idp.example.com/k"}`, ""},
	}
	for _, c := range ok {
		cfg, err := Parse([]byte("issuers: [" + c.yaml + "]"))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := cfg.Issuers[0].DiscoveryEndpoint(); got != c.endpoint {
			t.Errorf("%s: DiscoveryEndpoint = %q, want %q", c.name, got, c.endpoint)
		}
	}
	bad := []struct {
		name, yaml, want string
	}{
		{"both", `{name: a, issuer: "https://i", jwks_url: "https://i/k", discovery_url: "https://i/d"}`, "not both"},
		{"plain http discovery", `{name: a, issuer: "http://idp.example.com"}`, "must be https"},
		{"plain http discovery_url", `{name: a, issuer: "urn:x", discovery_url: "http://idp.example.com/d"}`, "discovery_url"},
		{"issuer not a URL", `{name: a, issuer: "corp"}`, "jwks_url is required"},
	}
	for _, c := range bad {
		_, err := Parse([]byte("issuers: [" + c.yaml + "]"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
}
