// Package resource is tokenwise's part of OAuth 2.0 Protected Resource
// Metadata (RFC 9728) and Resource Indicators (RFC 8707): the metadata
// document a client reads to find the authorization server, the URL that
// every 401 challenge points to, and the rule that a token must name this
// resource in its audience. MCP clients discover their authorization server
// this way from the first 401 they get.
package resource

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// WellKnown is the well-known URI suffix of RFC 9728 §3.
const WellKnown = "/.well-known/oauth-protected-resource"

// ReasonWrongResource labels a token whose aud does not name the resource.
const ReasonWrongResource = "wrong_resource"

// Metadata is one protected resource's metadata, ready to serve.
type Metadata struct {
	resource string
	url      string
	path     string
	document string
}

// document is the RFC 9728 §2 metadata tokenwise publishes.
type document struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
	BearerMethods        []string `json:"bearer_methods_supported,omitempty"`
	// DPoPAlgorithms are the DPoP proof algorithms some issuer accepts.
	DPoPAlgorithms []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// New builds the metadata from the configuration; nil (and no error) when
// resource_metadata is off. authorization_servers defaults to every
// issuer's issuer identifier.
func New(c config.ResourceMetadata, issuers []config.Issuer, tok config.Token) (*Metadata, error) {
	if !c.Enabled() {
		return nil, nil
	}
	u, err := URL(c.Resource)
	if err != nil {
		return nil, err
	}
	doc := document{Resource: c.Resource, AuthorizationServers: c.AuthorizationServers, ScopesSupported: c.ScopesSupported}
	if len(doc.AuthorizationServers) == 0 {
		for _, is := range issuers {
			doc.AuthorizationServers = append(doc.AuthorizationServers, is.Issuer)
		}
	}
	doc.DPoPAlgorithms = dpopAlgorithms(issuers)
	// RFC 9728 §2 names the ways a client may send the token; a cookie is none of them.
	if tok.Header != "" {
		doc.BearerMethods = append(doc.BearerMethods, "header")
	}
	if tok.QueryParameter != "" {
		doc.BearerMethods = append(doc.BearerMethods, "query")
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	parsed, _ := url.Parse(u)
	return &Metadata{resource: c.Resource, url: u, path: parsed.EscapedPath(), document: string(body)}, nil
}

// dpopAlgorithms is every algorithm a DPoP proof may use with some issuer,
// in configuration order: tokenwise accepts DPoP-bound tokens from any issuer.
func dpopAlgorithms(issuers []config.Issuer) []string {
	var out []string
	for _, is := range issuers {
		algs := is.DPoPAlgorithms
		if len(algs) == 0 {
			algs = config.DefaultDPoPAlgorithms
		}
		for _, alg := range algs {
			if !slices.Contains(out, alg) {
				out = append(out, alg)
			}
		}
	}
	return out
}

// URL is the metadata URL RFC 9728 §3.1 derives from a resource
// identifier: the well-known suffix inserted between the host and the path,
// a lone trailing "/" of the path dropped first.
// https://api.test/ → https://api.test/.well-known/oauth-protected-resource;
// https://api.test/mcp → https://api.test/.well-known/oauth-protected-resource/mcp.
func URL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("resource %q: not an absolute URL", resource)
	}
	path := u.EscapedPath()
	if path == "/" {
		path = ""
	}
	return u.Scheme + "://" + u.Host + WellKnown + path, nil
}

// Resource is the resource identifier.
func (m *Metadata) Resource() string { return m.resource }

// URL is the metadata document's URL, the value of resource_metadata in challenges.
func (m *Metadata) URL() string { return m.url }

// Path is the metadata URL's path, where a GET is answered with the document.
func (m *Metadata) Path() string { return m.path }

// Document is the metadata document, JSON.
func (m *Metadata) Document() string { return m.document }

// Serves reports whether a request for method and path (which may carry a
// query) asks for the metadata document. The host is not compared: a
// proxy may have rewritten it, and the document is public.
func (m *Metadata) Serves(method, path string) bool {
	if m == nil || method != "GET" {
		return false
	}
	p, _, _ := strings.Cut(path, "?")
	return p == m.path
}

// CheckAudience returns a verify.Error (401 invalid_token) unless the
// token's aud names the resource (RFC 8707 §2: the token was issued for
// it). A lone trailing "/" after the host does not make two identifiers differ. A nil
// token has nothing to check; a nil Metadata checks nothing.
func (m *Metadata) CheckAudience(tok *verify.Token) error {
	if m == nil || tok == nil {
		return nil
	}
	if slices.ContainsFunc(audiences(tok.Claims["aud"]), m.sameResource) {
		return nil
	}
	return &verify.Error{Description: "the token's audience does not include this resource", Reason: ReasonWrongResource}
}

func (m *Metadata) sameResource(aud string) bool {
	return aud == m.resource || withoutLoneSlash(aud) == withoutLoneSlash(m.resource)
}

// withoutLoneSlash drops the path of a URL whose whole path is "/":
// https://api.test/ and https://api.test name the same resource.
func withoutLoneSlash(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" && u.Path == "/" && u.RawQuery == "" && u.Fragment == "" {
		return strings.TrimSuffix(s, "/")
	}
	return s
}

// audiences reads aud as a string or an array of strings (RFC 7519 §4.1.3).
func audiences(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
