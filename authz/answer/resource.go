package answer

import (
	"net/http"
	"slices"

	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/reply"
)

// documentDescription is what a document answer says where a deny says
// why (the gRPC status message).
const documentDescription = "answered by tokenwise"

// Document answers a Check with a JSON document tokenwise serves itself
// (RFC 9728 protected resource metadata): a deny whose status is 200, which
// the proxy relays to the client instead of asking the upstream.
func Document(body string) reply.Reply {
	return reply.Reply{
		Status:          http.StatusOK,
		Description:     documentDescription,
		ResponseHeaders: overwrite([]policy.Header{{Name: "content-type", Value: "application/json"}}),
		Body:            body,
	}
}

// WithResourceMetadata adds resource_metadata="<url>" (RFC 9728 §5.1) to
// every WWW-Authenticate challenge of a 401 answer, so a client can find the
// authorization server from its first refusal. Other answers are returned
// as they are. The headers are copied before a value changes, never edited
// in place.
func WithResourceMetadata(a reply.Reply, url string) reply.Reply {
	if url == "" || a.Allowed || a.Status != http.StatusUnauthorized {
		return a
	}
	copied := false
	for i, h := range a.ResponseHeaders {
		if h.Name != "www-authenticate" || h.Value == "" {
			continue
		}
		if !copied {
			a.ResponseHeaders, copied = slices.Clone(a.ResponseHeaders), true
		}
		a.ResponseHeaders[i].Value += `, resource_metadata="` + quotable(url) + `"`
	}
	return a
}
