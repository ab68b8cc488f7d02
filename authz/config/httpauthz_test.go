package config

import (
	"slices"
	"strings"
	"testing"
)

const issuerYAML = `
issuers:
  - {name: corp, issuer: "https://idp.test/", jwks_url: "https://idp.test/jwks"}
`

func TestHTTPAuthzAndResourceMetadata(t *testing.T) {
	c, err := Parse([]byte(issuerYAML + `
http_authz:
  address: 127.0.0.1:9193
  path_prefix: /authz
  trusted_proxies: [10.0.0.0/8, 192.168.1.7]
resource_metadata:
  resource: https://api.test/mcp
  scopes_supported: [tools:call]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HTTPAuthz.Enabled() || c.HTTPAuthz.PathPrefix != "/authz" || !slices.Equal(c.HTTPAuthz.TrustedProxies, []string{"10.0.0.0/8", "192.168.1.7"}) {
		t.Errorf("http_authz %+v", c.HTTPAuthz)
	}
	if p, err := ParsePrefix("192.168.1.7"); err != nil || p.String() != "192.168.1.7/32" {
		t.Errorf("a single address is a /32: %v %v", p, err)
	}
	if !c.ResourceMetadata.Enabled() || c.ResourceMetadata.Resource != "https://api.test/mcp" {
		t.Errorf("resource_metadata %+v", c.ResourceMetadata)
	}
	d, err := Parse([]byte(issuerYAML))
	if err != nil {
		t.Fatal(err)
	}
	if d.HTTPAuthz.Enabled() || d.ResourceMetadata.Enabled() || !slices.Equal(d.HTTPAuthz.TrustedProxies, DefaultTrustedProxies) {
		t.Errorf("defaults: %+v %+v", d.HTTPAuthz, d.ResourceMetadata)
	}
}

func TestHTTPAuthzAndResourceMetadataFaults(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"http_authz: {address: nope}", "http_authz.address"},
		{"http_authz: {address: 127.0.0.1:1, path_prefix: authz}", "http_authz.path_prefix"},
		{"http_authz: {trusted_proxies: [10.0.0.0/33]}", "http_authz.trusted_proxies[0]"},
		{"http_authz: {tls: {cert_file: a.pem}}", "http_authz.tls"},
		{"http_authz: {trusted_proxy: []}", "trusted_proxy"},
		{"resource_metadata: {resource: http://api.test/}", "must be https"},
		{`resource_metadata: {resource: "https://api.test/#x"}`, "fragment"},
		{`resource_metadata: {resource: "https://api.test/?a=1"}`, "query"},
		{"resource_metadata: {resource: /mcp}", "absolute"},
		{"resource_metadata: {scopes_supported: [a]}", "resource is required"},
		{"resource_metadata: {resource: https://api.test/, authorization_servers: [nope]}", "authorization_servers[0]"},
	} {
		_, err := Parse([]byte(issuerYAML + c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.yaml, err, c.want)
		}
	}
	if _, err := Parse([]byte(issuerYAML + "resource_metadata: {resource: http://localhost:8080/}")); err != nil {
		t.Errorf("http on loopback is for local development: %v", err)
	}
}
