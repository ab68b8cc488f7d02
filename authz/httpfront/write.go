package httpfront

import (
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
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
func Write(w http.ResponseWriter, resp *authv3.CheckResponse, document bool) {
	if resp.GetStatus().GetCode() == int32(codes.OK) && resp.GetDeniedResponse() == nil {
		writeAllow(w, resp.GetOkResponse())
		return
	}
	d := resp.GetDeniedResponse()
	status := int(d.GetStatus().GetCode())
	switch {
	case status == 0:
		status = http.StatusForbidden // Envoy's default for a deny without a status
	case status < 200 || status > 599:
		status = http.StatusForbidden
	case status < 300 && !document:
		status = http.StatusForbidden
	}
	setHeaders(w.Header(), d.GetHeaders())
	w.WriteHeader(status)
	if body := d.GetBody(); body != "" {
		_, _ = w.Write([]byte(body))
	}
}

func writeAllow(w http.ResponseWriter, ok *authv3.OkHttpResponse) {
	h := w.Header()
	set := setHeaders(h, ok.GetHeaders())
	setHeaders(h, ok.GetResponseHeadersToAdd())
	var removed []string
	for _, name := range ok.GetHeadersToRemove() {
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

// setHeaders applies header options as Envoy would: overwrite unless the
// option appends. It returns the lowercase names it wrote.
func setHeaders(h http.Header, options []*corev3.HeaderValueOption) map[string]bool {
	written := map[string]bool{}
	for _, o := range options {
		name := strings.ToLower(o.GetHeader().GetKey())
		if !writable(name) {
			continue
		}
		value := o.GetHeader().GetValue()
		if raw := o.GetHeader().GetRawValue(); len(raw) > 0 {
			value = string(raw)
		}
		if o.GetAppend().GetValue() || written[name] {
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
