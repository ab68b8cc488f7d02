package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/authz/config"
)

const mcpResource = "https://mcp.shop.test/mcp"

// withResource turns on RFC 9728 metadata for an MCP server, and the HTTP
// authorization listener.
func withResource(c *config.Config) {
	c.ResourceMetadata = config.ResourceMetadata{Resource: mcpResource, ScopesSupported: []string{"orders:read"}}
	c.HTTPAuthz.Address = "127.0.0.1:0"
}

const metadataURL = `https://mcp.shop.test/.well-known/oauth-protected-resource/mcp`

// TestProtectedResourceMetadataOverGRPC follows an MCP client's discovery:
// the first 401 names the metadata, a GET of it through Envoy is answered by
// tokenwise itself, and it names the authorization server.
func TestProtectedResourceMetadataOverGRPC(t *testing.T) {
	h := start(t, withResource)
	h.waitReady()

	first := read(h.check(envoyRequest("POST", "/mcp", nil)))
	wantChallenge := `Bearer realm="tokenwise", resource_metadata="` + metadataURL + `"`
	if first.status != 401 || first.headers["www-authenticate"] != wantChallenge {
		t.Fatalf("first answer %d %q, want 401 %q", first.status, first.headers["www-authenticate"], wantChallenge)
	}

	doc := read(h.check(envoyRequest("GET", "/.well-known/oauth-protected-resource/mcp", nil)))
	if doc.allowed || doc.status != 200 || doc.headers["content-type"] != "application/json" {
		t.Fatalf("metadata answer: allowed %v status %d headers %v", doc.allowed, doc.status, doc.headers)
	}
	var meta struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := json.Unmarshal([]byte(doc.body), &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Resource != mcpResource || len(meta.AuthorizationServers) != 1 || meta.AuthorizationServers[0] != h.issuer.URL() ||
		len(meta.ScopesSupported) != 1 {
		t.Fatalf("metadata %+v, want the resource and the issuer %s", meta, h.issuer.URL())
	}
	if post := read(h.check(envoyRequest("POST", "/.well-known/oauth-protected-resource/mcp", nil))); post.status != 401 {
		t.Errorf("only GET is answered with the document; POST got %d", post.status)
	}

	// A token for another audience (RFC 8707): 401 invalid_token, with the pointer.
	other := h.issuer.Mint(map[string]any{"sub": "alice", "aud": []string{"orders-api"}, "scope": "orders:read"})
	a := read(h.check(envoyRequest("GET", "/orders/1", bearer(other))))
	if a.status != 401 || !strings.Contains(a.headers["www-authenticate"], `error="invalid_token"`) ||
		!strings.HasSuffix(a.headers["www-authenticate"], `resource_metadata="`+metadataURL+`"`) {
		t.Fatalf("token without the resource in aud: %d %q", a.status, a.headers["www-authenticate"])
	}
	good := h.issuer.Mint(map[string]any{"sub": "alice", "aud": []string{"orders-api", mcpResource}, "scope": "orders:read"})
	if a := read(h.check(envoyRequest("GET", "/orders/1", bearer(good)))); !a.allowed {
		t.Fatalf("token for the resource denied: %d %s", a.status, a.body)
	}
	noScope := h.issuer.Mint(map[string]any{"sub": "bob", "aud": []string{"orders-api", mcpResource}})
	if a := read(h.check(envoyRequest("GET", "/orders/1", bearer(noScope)))); a.status != 403 || strings.Contains(a.headers["www-authenticate"], "resource_metadata") {
		t.Fatalf("a 403 carries no resource_metadata: %d %q", a.status, a.headers["www-authenticate"])
	}
}

// TestProtectedResourceMetadataOverHTTP: the HTTP authorization listener
// serves the document on its path (for a proxy to route to) and its 401s
// point at it.
func TestProtectedResourceMetadataOverHTTP(t *testing.T) {
	h := start(t, withResource)
	h.waitReady()
	base := "http://" + h.srv.HTTPAuthzAddr()
	p := send(t, base, "GET", "/.well-known/oauth-protected-resource/mcp")
	if p.status != 200 || p.header.Get("Content-Type") != "application/json" || !strings.Contains(p.body, `"resource":"`+mcpResource+`"`) {
		t.Fatalf("document: %d %v %q", p.status, p.header, p.body)
	}
	p = send(t, base, "POST", "/mcp")
	if p.status != 401 || !strings.Contains(p.header.Get("Www-Authenticate"), `resource_metadata="`+metadataURL+`"`) {
		t.Fatalf("401 challenge %q", p.header.Get("Www-Authenticate"))
	}
}
