// Package httpfront is the HTTP front end of a Check: HTTP authorization
// mode, for proxies that ask over HTTP instead of gRPC (Envoy's ext_authz
// http_service, nginx auth_request, ingress-nginx auth-url, Traefik
// ForwardAuth, Caddy forward_auth).
//
// It turns the proxy's authorization request into tokenwise's own
// request.Request, describing the original request the client sent, runs
// the same pipeline as the gRPC front end, and writes the pipeline's answer
// back as HTTP. The pipeline's answer is tokenwise's own reply.Reply,
// which the gRPC front end renders for Envoy and Write renders as HTTP, so
// no stage knows which front end asked.
//
// The original request is taken, from a trusted proxy only, from the first
// of: X-Forwarded-Method + X-Forwarded-Uri (+ X-Forwarded-Proto and
// X-Forwarded-Host; Traefik, Caddy); X-Original-Method + X-Original-URL or
// X-Original-URI (nginx, ingress-nginx); else the request line itself minus
// the path prefix (Envoy's http_service). A request that carries both
// forwarded shapes, or any of those headers more than once, is refused: a
// client-sent header the proxy failed to clear must never pick the path the
// policy judges.
package httpfront

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/tokenwise/tokenwise/authz/request"
)

// Options say how authorization requests are read.
type Options struct {
	// PathPrefix is stripped from the request line's path (Envoy
	// http_service's path_prefix).
	PathPrefix string
	// TrustedProxies are the peers whose X-Forwarded-* and X-Original-*
	// headers, X-Forwarded-For and Client-Cert are believed.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes caps the body read into the request (policy.max_body_bytes);
	// a longer body is cut there and marked truncated. <= 0: 1 MiB.
	MaxBodyBytes int
}

// ErrMalformed is wrapped by every error Request returns; the answer is
// 400 invalid_request, and the error's text is safe to show the client.
var ErrMalformed = errors.New("malformed authorization request")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// original is the request line of the client's request.
type original struct {
	method, scheme, authority, path string
}

// Request builds the request the pipeline judges from the proxy's
// authorization request. On an error the returned Request still describes
// what could be read, for the decision log.
func Request(hr *http.Request, o Options) (*request.Request, error) {
	peer := peerOf(hr.RemoteAddr)
	trusted := o.trusts(peer.Addr())
	req := &request.Request{
		Frontend: request.FrontendHTTP,
		Protocol: hr.Proto,
		Method:   hr.Method,
		Path:     hr.RequestURI,
		Headers:  headers(hr.Header),
		Source:   request.Peer{Address: addrText(peer.Addr()), Port: uint32(peer.Port())},
	}
	req.ID = req.Headers["x-request-id"]
	line, err := o.original(hr, trusted)
	if err != nil {
		return req, err
	}
	req.Method, req.Scheme, req.Authority, req.Path = line.method, line.scheme, line.authority, line.path
	// The pseudo-headers Envoy puts in the CheckRequest, so a policy reads
	// the same input from either front end; Host is the proxy's, not the client's.
	delete(req.Headers, "host")
	req.Headers[":method"], req.Headers[":scheme"], req.Headers[":authority"], req.Headers[":path"] = line.method, line.scheme, line.authority, line.path
	if err := client(hr, trusted, &req.Source); err != nil {
		return req, err
	}
	if hr.ContentLength > 0 {
		req.Size = hr.ContentLength
	}
	if err := readBody(hr, o.MaxBodyBytes, req); err != nil {
		return req, err
	}
	return req, nil
}

// trusts reports whether a peer's forwarding headers are believed.
func (o Options) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range o.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerOf(remote string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// headers folds the header lines into Envoy's shape: lowercase names,
// repeated headers joined with ",".
func headers(h http.Header) map[string]string {
	out := make(map[string]string, len(h)+4)
	for name, values := range h {
		out[strings.ToLower(name)] = strings.Join(values, ",")
	}
	return out
}

// original finds the client's request line in the shapes the package
// comment lists.
func (o Options) original(hr *http.Request, trusted bool) (original, error) {
	line := original{method: hr.Method, scheme: "http", authority: hr.Host}
	if hr.TLS != nil {
		line.scheme = "https"
	}
	if !trusted {
		return o.requestLine(hr, line)
	}
	if proto, ok, err := single(hr, "X-Forwarded-Proto"); err != nil {
		return line, err
	} else if ok {
		if p := strings.ToLower(proto); p == "http" || p == "https" {
			line.scheme = p
		} else {
			return line, malformed("X-Forwarded-Proto %q: want http or https", proto)
		}
	}
	forwarded := present(hr, "X-Forwarded-Method", "X-Forwarded-Uri")
	nginx := present(hr, "X-Original-Method", "X-Original-Url", "X-Original-Uri")
	switch {
	case forwarded && nginx:
		return line, malformed("both X-Forwarded-Method/X-Forwarded-Uri and X-Original-* headers are present; the proxy must send one kind")
	case forwarded:
		return forwardedLine(hr, line)
	case nginx:
		return originalLine(hr, line)
	}
	return o.requestLine(hr, line)
}

func present(hr *http.Request, names ...string) bool {
	for _, n := range names {
		if len(hr.Header.Values(n)) > 0 {
			return true
		}
	}
	return false
}

// single returns the one value of a header; twice is an error.
func single(hr *http.Request, name string) (string, bool, error) {
	values := hr.Header.Values(name)
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
		return strings.TrimSpace(values[0]), true, nil
	}
	return "", false, malformed("%s sent more than once", name)
}

// required is single for a header the shape cannot do without.
func required(hr *http.Request, name, shape string) (string, error) {
	v, ok, err := single(hr, name)
	if err == nil && (!ok || v == "") {
		err = malformed("%s is required with %s", name, shape)
	}
	return v, err
}

// forwardedLine is Traefik's and Caddy's shape.
func forwardedLine(hr *http.Request, line original) (original, error) {
	const shape = "X-Forwarded-Method/X-Forwarded-Uri"
	var err error
	if line.method, err = required(hr, "X-Forwarded-Method", shape); err != nil {
		return line, err
	}
	if line.path, err = required(hr, "X-Forwarded-Uri", shape); err != nil {
		return line, err
	}
	if err := forwardedHost(hr, &line); err != nil {
		return line, err
	}
	return line, checkLine(line)
}

// forwardedHost takes the authority from X-Forwarded-Host when present.
func forwardedHost(hr *http.Request, line *original) error {
	host, ok, err := single(hr, "X-Forwarded-Host")
	if ok && host != "" {
		line.authority = host
	}
	return err
}

// originalLine is nginx's and ingress-nginx's shape.
func originalLine(hr *http.Request, line original) (original, error) {
	const shape = "X-Original-URL or X-Original-URI"
	var err error
	if line.method, err = required(hr, "X-Original-Method", shape); err != nil {
		return line, err
	}
	raw, ok, err := single(hr, "X-Original-Url")
	if err != nil {
		return line, err
	}
	if ok {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return line, malformed("X-Original-URL %q: want an absolute http(s) URL", raw)
		}
		line.scheme, line.authority, line.path = u.Scheme, u.Host, u.RequestURI()
		return line, checkLine(line)
	}
	if line.path, err = required(hr, "X-Original-Uri", "X-Original-Method"); err != nil {
		return line, err
	}
	if err := forwardedHost(hr, &line); err != nil {
		return line, err
	}
	return line, checkLine(line)
}

// requestLine is Envoy http_service's shape: the request itself, its path
// behind path_prefix.
func (o Options) requestLine(hr *http.Request, line original) (original, error) {
	path := hr.RequestURI
	if !strings.HasPrefix(path, "/") {
		if !hr.URL.IsAbs() {
			return line, malformed("request target %q: want a path", path)
		}
		path = hr.URL.RequestURI()
	}
	if o.PathPrefix != "" {
		rest, ok := strings.CutPrefix(path, o.PathPrefix)
		if !ok || !strings.HasPrefix(rest, "/") {
			return line, malformed("path %q is not below the path prefix %q", path, o.PathPrefix)
		}
		path = rest
	}
	line.path = path
	return line, checkLine(line)
}

// checkLine refuses a method that is not an HTTP token, a path that is
// not origin-form, and control characters or spaces anywhere.
func checkLine(line original) error {
	if line.method == "" || strings.IndexFunc(line.method, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return malformed("method %q is not an HTTP method", line.method)
	}
	if !strings.HasPrefix(line.path, "/") || !visible(line.path) {
		return malformed("path %q: want an absolute path", line.path)
	}
	if !visible(line.authority) {
		return malformed("host %q is not a valid authority", line.authority)
	}
	return nil
}

func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// isTokenChar is RFC 9110 §5.6.2's tchar.
func isTokenChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// client describes the downstream client: behind a trusted proxy, the last
// X-Forwarded-For hop (the address that proxy saw) and the RFC 9440
// Client-Cert it forwards; a caller that is not a trusted proxy is the client
// itself, with its own TLS client certificate.
func client(hr *http.Request, trusted bool, src *request.Peer) error {
	if !trusted {
		if hr.TLS != nil && len(hr.TLS.PeerCertificates) > 0 {
			src.Certificate = escapedPEM(hr.TLS.PeerCertificates[0].Raw)
		}
		return nil
	}
	if xff := hr.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(xff[len(xff)-1], ",")
		last := strings.TrimSpace(hops[len(hops)-1])
		if a, err := netip.ParseAddr(last); err == nil {
			src.Address, src.Port = a.Unmap().String(), 0
		} else if host, port, err := net.SplitHostPort(last); err == nil {
			if a, err := netip.ParseAddr(host); err == nil {
				n, _ := strconv.ParseUint(port, 10, 16)
				src.Address, src.Port = a.Unmap().String(), uint32(n)
			}
		}
	}
	cert, ok, err := single(hr, "Client-Cert")
	if err != nil || !ok {
		return err
	}
	der, err := clientCert(cert)
	if err != nil {
		return err
	}
	src.Certificate = escapedPEM(der)
	return nil
}

// clientCert decodes RFC 9440's Client-Cert, a structured-field byte
// sequence: the base64 DER certificate between colons.
func clientCert(v string) ([]byte, error) {
	inner, ok := strings.CutPrefix(v, ":")
	if inner, ok2 := strings.CutSuffix(inner, ":"); ok && ok2 {
		if der, err := base64.StdEncoding.DecodeString(inner); err == nil && len(der) > 0 {
			return der, nil
		}
	}
	return nil, malformed("Client-Cert: want :base64 DER: (RFC 9440)")
}

// escapedPEM is a certificate the way Envoy forwards it in
// attributes.source.certificate: PEM, URL-encoded (every byte outside
// RFC 3986's unreserved set as %XX, so either unescaping reads it back).
func escapedPEM(der []byte) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	var b strings.Builder
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// readBody reads the body, at most max bytes. A longer one is cut and
// marked as Envoy marks a partial body, so the policy sees
// input.truncated_body and no parsed_body.
func readBody(hr *http.Request, max int, req *request.Request) error {
	if hr.Body == nil || hr.Body == http.NoBody {
		return nil
	}
	if max <= 0 {
		max = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, int64(max)+1))
	if err != nil {
		return malformed("reading the body: %v", err)
	}
	if len(body) > max {
		body = body[:max]
		req.Headers["x-envoy-auth-partial-body"] = "true"
	}
	req.Body = string(body)
	return nil
}
