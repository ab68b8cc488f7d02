// Package request is the request every stage of a Check reads.
//
// A front end (gRPC ext_authz in package grpcfront, HTTP authorization mode)
// turns what its proxy sent into one Request; from then on the pipeline —
// source, verify, proof of possession, policy, limits, answer — reads only
// this type and never the front end's own. A Request is built once per Check
// and read concurrently by nothing but its own Check, so it needs no locking.
package request

import (
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Front-end names, as the policy input, metrics and the decision log show them.
const (
	FrontendGRPC = "grpc"
	FrontendHTTP = "http"
)

// Request is the original HTTP request as the proxy described it.
type Request struct {
	// Frontend is FrontendGRPC or FrontendHTTP.
	Frontend string
	// ID is the proxy's request id (Envoy's attributes.request.http.id).
	ID string
	// Time is when the proxy received the request; zero when unknown.
	Time time.Time
	// Method, Scheme, Authority and Path are the request line as the proxy
	// sends it: Path is the path with its query, as in HTTP/2's :path.
	Method    string
	Scheme    string
	Authority string
	Path      string
	// Query and Fragment are set only when the proxy sends them apart from
	// Path (Envoy leaves both empty and keeps the query in Path).
	Query    string
	Fragment string
	// Protocol is the HTTP version, for example "HTTP/1.1".
	Protocol string
	// Size is the request body's size in bytes as the proxy saw it (0: unknown).
	Size int64
	// Headers maps each lowercase header name to its value, a repeated
	// header's values joined with ",". It is always filled, also when the
	// proxy sent only HeaderMap.
	Headers map[string]string
	// HeaderMap holds one entry per header line, in order, when the proxy
	// sent headers that way (Envoy's encode_raw_headers); nil otherwise.
	HeaderMap []Header
	// Body is the request body the proxy forwarded, and RawBody the same
	// when it was sent as bytes (Envoy's pack_as_bytes).
	Body    string
	RawBody []byte
	// Source is the downstream client; Destination is the proxy's listener.
	Source      Peer
	Destination Peer
	// ContextExtensions are the route's ext_authz context_extensions.
	ContextExtensions map[string]string
	// More renders what the proxy sent beyond the fields above (Envoy's
	// metadataContext, routeMetadataContext, tlsSession), keyed by their
	// names under input.attributes. Nil when there is nothing more. It is a
	// function so the cost is paid only when a policy reads them.
	More func() map[string]ast.Value
}

// Header is one header line.
type Header struct {
	Name  string
	Value string
	// Raw says the proxy sent the value as bytes (Envoy's raw_value), which
	// the policy input renders as OPA-Envoy does (rawValue, base64).
	Raw bool
}

// Peer is one end of the connection the request came over.
type Peer struct {
	// Address and Port are the socket address; Address is empty when the
	// peer has none.
	Address string
	Port    uint32
	// Service, Labels and Principal describe the peer as the proxy knows it
	// (Principal: the SAN or subject of a TLS peer certificate).
	Service   string
	Labels    map[string]string
	Principal string
	// Certificate is the peer's certificate as Envoy forwards it:
	// URL-encoded PEM (include_peer_certificate). Empty when none was sent.
	Certificate string
}

// Values returns every value the request carries for the header name
// (case-insensitive): one per header line when the proxy sent HeaderMap,
// else the joined value from Headers. Stages that must see every spelling of
// a header (the token finder) read it here, so both shapes count the same.
func (r *Request) Values(name string) []string {
	if len(r.HeaderMap) > 0 {
		var values []string
		for _, h := range r.HeaderMap {
			if strings.EqualFold(h.Name, name) {
				values = append(values, h.Value)
			}
		}
		return values
	}
	if v, ok := r.Headers[strings.ToLower(name)]; ok {
		return []string{v}
	}
	return nil
}

// Header returns the header's value (repeats joined with ","), "" when absent.
func (r *Request) Header(name string) string {
	return r.Headers[strings.ToLower(name)]
}

// JoinHeaders folds header lines into the Headers shape: lowercase names,
// repeated names joined with ",".
func JoinHeaders(lines []Header) map[string]string {
	out := make(map[string]string, len(lines))
	for _, h := range lines {
		name := strings.ToLower(h.Name)
		if prev, ok := out[name]; ok {
			out[name] = prev + "," + h.Value
			continue
		}
		out[name] = h.Value
	}
	return out
}

// TimeText formats t as protojson formats a Timestamp (UTC, with 0, 3, 6 or
// 9 fractional digits), the form OPA-Envoy policies see times in.
func TimeText(t time.Time) string {
	t = t.UTC()
	layout := "2006-01-02T15:04:05Z07:00"
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1e6 == 0:
		layout = "2006-01-02T15:04:05.000Z07:00"
	case ns%1e3 == 0:
		layout = "2006-01-02T15:04:05.000000Z07:00"
	default:
		layout = "2006-01-02T15:04:05.000000000Z07:00"
	}
	return t.Format(layout)
}
