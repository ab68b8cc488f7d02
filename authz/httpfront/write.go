package httpfront

import (
	"net/http"
	"strings"

	"github.com/tokenwise/tokenwise/authz/reply"
)

// HeadersToRemove is the response header that lists, comma-separated, the
// upstream headers an allow removes. Envoy's http_service reads it
// (x-envoy-auth-headers-to-remove); for the other proxies each removed
// header is also sent with an empty value, so a proxy that copies it
// upstream overwrites the client's value with nothing.
const HeadersToRemove = "x-envoy-auth-headers-to-remove"

// Write writes the pipeline's answer as the authorization response.
//
// Allowed: 200 with an empty body; the headers for the upstream request
// and the policy's response_headers_to_add are response headers, which the
// proxy copies where its configuration says; removals as HeadersToRemove
// describes. Query rewrites and dynamic metadata have no HTTP form and are
// not sent.
//
// Denied: the answer's status, headers (WWW-Authenticate among them) and
// body. Every proxy reads a 2xx as "allow", so a deny with a 2xx status is
// written as 403 unless document says it is a document tokenwise serves
// itself (protected resource metadata).
func Write(w http.ResponseWriter, a reply.Reply, document bool) {
	if a.Allowed {
		writeAllow(w, a)
		return
	}
	status := a.Status
	switch {
	case status == 0:
		status = http.StatusForbidden // Envoy's default for a deny without a status
	case status < 200 || status > 599:
		status = http.StatusForbidden
	case status < 300 && !document:
		status = http.StatusForbidden
	}
	setHeaders(w.Header(), a.ResponseHeaders)
	w.WriteHeader(status)
	if a.Body != "" {
		_, _ = w.Write([]byte(a.Body))
	}
}

func writeAllow(w http.ResponseWriter, a reply.Reply) {
	h := w.Header()
	set := setHeaders(h, a.RequestHeaders)
	setHeaders(h, a.ResponseHeaders)
	var removed []string
	for _, name := range a.RemoveRequestHeaders {
		name = strings.ToLower(name)
		if set[name] || !writable(name) {
			continue
		}
		h[http.CanonicalHeaderKey(name)] = []string{""}
		removed = append(removed, name)
	}
	if len(removed) > 0 {
		h.Set(HeadersToRemove, strings.Join(removed, ","))
	}
	w.WriteHeader(http.StatusOK)
}

// setHeaders applies an answer's headers as Envoy would: overwrite unless
// the header appends. It returns the lowercase names it wrote.
func setHeaders(h http.Header, headers []reply.Header) map[string]bool {
	written := map[string]bool{}
	for _, o := range headers {
		name := strings.ToLower(o.Name)
		if !writable(name) {
			continue
		}
		value := o.Value
		if o.Append || written[name] {
			h.Add(name, value)
		} else {
			h.Set(name, value)
		}
		written[name] = true
	}
	return written
}

// writable refuses names that are not ordinary end-to-end headers: a
// pseudo-header, hop-by-hop headers, or framing the server itself writes.
func writable(name string) bool {
	if name == "" || strings.HasPrefix(name, ":") {
		return false
	}
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "content-length":
		return false
	}
	return true
}
