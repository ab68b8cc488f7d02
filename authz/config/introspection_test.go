package config

import (
	"strings"
	"testing"
	"time"
)

func TestIntrospectionParsed(t *testing.T) {
	t.Setenv("TW_TEST_SECRET", "s3cret")
	c, err := Parse([]byte(`
issuers:
  - name: hydra
    issuer: https://hydra.example.com/
    introspection:
      url: https://hydra.example.com/admin/oauth2/introspect
      client_id: tokenwise
      client_secret: ${TW_TEST_SECRET}
      token_prefix: ory_at_
      cache_ttl: 1m
  - name: corp
    issuer: https://idp.example.com/
    jwks_url: https://idp.example.com/jwks
`))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Issuers[0].Introspection
	if in == nil || in.Auth != AuthClientSecretBasic || in.ClientSecret != "s3cret" || in.TokenPrefix != "ory_at_" {
		t.Fatalf("introspection = %+v", in)
	}
	if in.CacheTTL != time.Minute || in.NegativeCacheTTL != 10*time.Second || in.Timeout != 2*time.Second {
		t.Errorf("durations = %v %v %v", in.CacheTTL, in.NegativeCacheTTL, in.Timeout)
	}
	hydra := c.Issuers[0]
	if hydra.HasKeys() || hydra.DiscoveryEndpoint() != "" || hydra.DiscoveryDocument() != "" {
		t.Errorf("an issuer that only introspects: HasKeys %v, DiscoveryEndpoint %q, DiscoveryDocument %q",
			hydra.HasKeys(), hydra.DiscoveryEndpoint(), hydra.DiscoveryDocument())
	}
	if c.Issuers[1].Introspection != nil || !c.Issuers[1].HasKeys() {
		t.Error("a JWKS issuer changed")
	}
}

func TestIntrospectionDiscovery(t *testing.T) {
	is := Issuer{Issuer: "https://kc.example.com/realms/shop", Introspection: &Introspection{}}
	want := "https://kc.example.com/realms/shop" + DiscoveryPath
	if is.DiscoveryDocument() != want || is.HasKeys() {
		t.Errorf("url left out: DiscoveryDocument %q, HasKeys %v", is.DiscoveryDocument(), is.HasKeys())
	}
	// Beside keys from discovery: one document for both.
	is.DiscoveryURL = "https://kc.example.com/disc"
	if !is.HasKeys() || is.DiscoveryEndpoint() != is.DiscoveryURL || is.DiscoveryDocument() != is.DiscoveryURL {
		t.Errorf("with discovery_url: HasKeys %v, %q, %q", is.HasKeys(), is.DiscoveryEndpoint(), is.DiscoveryDocument())
	}
}

func TestIntrospectionFaults(t *testing.T) {
	base := func(extra string) string {
		return "issuers:\n  - name: a\n    issuer: https://a.example.com/\n    introspection:\n" + extra
	}
	second := func(prefixA, prefixB string) string {
		return "issuers:\n" +
			"  - name: a\n    issuer: https://a.example.com/\n    introspection: {url: https://a.example.com/i, auth: none, token_prefix: \"" + prefixA + "\"}\n" +
			"  - name: b\n    issuer: https://b.example.com/\n    introspection: {url: https://b.example.com/i, auth: none, token_prefix: \"" + prefixB + "\"}\n"
	}
	for name, c := range map[string]struct{ yaml, want string }{
		"plain http url": {base("      url: http://a.example.com/i\n      auth: none\n"), "must be https"},
		"unknown auth":   {base("      url: https://a.example.com/i\n      auth: private_key_jwt\n"), "introspection.auth"},
		"basic without secret": {base("      url: https://a.example.com/i\n      client_id: x\n"),
			"client_secret_basic needs client_id and client_secret"},
		"post without id": {base("      url: https://a.example.com/i\n      auth: client_secret_post\n      client_secret: s\n"),
			"needs client_id"},
		"bearer without secret": {base("      url: https://a.example.com/i\n      auth: bearer\n"), "bearer needs client_secret"},
		"negative duration":     {base("      url: https://a.example.com/i\n      auth: none\n      timeout: -1s\n"), "negative"},
		"unknown key":           {base("      url: https://a.example.com/i\n      auth: none\n      cache: 1m\n"), "cache"},
		"no url, no discovery": {"issuers:\n  - name: a\n    issuer: a-corp\n    introspection: {auth: none}\n",
			"introspection.url is required"},
		"two without prefix": {second("", ""), "at most one"},
		"same prefix":        {second("ory_at_", "ory_at_"), "same introspection.token_prefix"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	// Distinct prefixes, or one issuer without a prefix, are fine.
	for _, ok := range []string{second("ory_at_", ""), second("a_", "b_")} {
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
}
