// Package grpcfront is the gRPC front end's half of a Check: it turns
// Envoy's envoy.service.auth.v3 CheckRequest into tokenwise's own
// request.Request, and the pipeline's reply.Reply into Envoy's
// CheckResponse, so no stage of the pipeline reads or writes Envoy's types.
//
// What the Request has no field for (metadata, the TLS session, non-socket
// addresses) is rendered on demand in OPA-Envoy's shape for the policy.
package grpcfront

import (
	"errors"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/reflect/protoreflect"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tokenwise/tokenwise/authz/request"
)

// ErrNoHTTP is returned for a CheckRequest that describes no HTTP request.
var ErrNoHTTP = errors.New("check request has no attributes.request.http")

// Request converts a CheckRequest; the only error is ErrNoHTTP.
func Request(check *authv3.CheckRequest) (*request.Request, error) {
	a := check.GetAttributes()
	h := a.GetRequest().GetHttp()
	if h == nil {
		return nil, ErrNoHTTP
	}
	r := &request.Request{
		Frontend:          request.FrontendGRPC,
		ID:                h.GetId(),
		Method:            h.GetMethod(),
		Scheme:            h.GetScheme(),
		Authority:         h.GetHost(),
		Path:              h.GetPath(),
		Query:             h.GetQuery(),
		Fragment:          h.GetFragment(),
		Protocol:          h.GetProtocol(),
		Size:              h.GetSize(),
		Headers:           h.GetHeaders(),
		Body:              h.GetBody(),
		RawBody:           h.GetRawBody(),
		Source:            peer(a.GetSource()),
		Destination:       peer(a.GetDestination()),
		ContextExtensions: a.GetContextExtensions(),
	}
	if t := a.GetRequest().GetTime(); t != nil {
		r.Time = t.AsTime()
	}
	if lines := h.GetHeaderMap().GetHeaders(); len(lines) > 0 {
		// header_map is the truth when present, also over a headers map
		// sent beside it: the token finder reads header_map (Values), so
		// the policy must see the same headers, never another set.
		r.HeaderMap = headerLines(lines)
		r.Headers = request.JoinHeaders(r.HeaderMap)
	}
	if r.Headers == nil {
		r.Headers = map[string]string{}
	}
	if hasMore(a) {
		r.More = func() map[string]ast.Value { return more(a) }
	}
	return r, nil
}

func headerLines(lines []*corev3.HeaderValue) []request.Header {
	out := make([]request.Header, len(lines))
	for i, hv := range lines {
		out[i] = request.Header{Name: hv.GetKey(), Value: hv.GetValue()}
		if raw := hv.GetRawValue(); len(raw) > 0 {
			out[i].Value, out[i].Raw = string(raw), true
		}
	}
	return out
}

func peer(p *authv3.AttributeContext_Peer) request.Peer {
	out := request.Peer{
		Service:     p.GetService(),
		Labels:      p.GetLabels(),
		Principal:   p.GetPrincipal(),
		Certificate: p.GetCertificate(),
	}
	if sa := p.GetAddress().GetSocketAddress(); sa != nil {
		out.Address, out.Port = sa.GetAddress(), sa.GetPortValue()
	}
	return out
}

// hasMore reports whether the request carries fields the Request has no
// place for.
func hasMore(a *authv3.AttributeContext) bool {
	return a.GetMetadataContext() != nil || a.GetRouteMetadataContext() != nil ||
		a.GetTlsSession() != nil || !plainAddress(a.GetSource()) || !plainAddress(a.GetDestination())
}

// plainAddress says the peer's address is absent or a socket address with
// nothing but an address and a port, which the Request's fields hold exactly.
func plainAddress(p *authv3.AttributeContext_Peer) bool {
	addr := p.GetAddress()
	if addr == nil {
		// A peer Envoy sent with nothing in it still renders, as {}.
		return p == nil || p.GetService() != "" || len(p.GetLabels()) > 0 || p.GetPrincipal() != "" || p.GetCertificate() != ""
	}
	sa := addr.GetSocketAddress()
	return sa != nil && sa.GetProtocol() == 0 && sa.GetResolverName() == "" && !sa.GetIpv4Compat() &&
		sa.GetNamedPort() == "" && sa.GetAddress() != ""
}

// more renders the extra attributes. A peer whose address the Request
// cannot hold is rendered whole, replacing the plain rendering.
func more(a *authv3.AttributeContext) map[string]ast.Value {
	out := map[string]ast.Value{}
	add := func(name string, m protoreflect.ProtoMessage, present bool) {
		if present {
			out[name] = protoValue(m.ProtoReflect())
		}
	}
	add("metadataContext", a.GetMetadataContext(), a.GetMetadataContext() != nil)
	add("routeMetadataContext", a.GetRouteMetadataContext(), a.GetRouteMetadataContext() != nil)
	add("tlsSession", a.GetTlsSession(), a.GetTlsSession() != nil)
	add("source", a.GetSource(), !plainAddress(a.GetSource()))
	add("destination", a.GetDestination(), !plainAddress(a.GetDestination()))
	return out
}

func stringMapValue(m map[string]string) ast.Object {
	obj := ast.NewObjectWithCapacity(len(m))
	for k, v := range m {
		obj.Insert(ast.StringTerm(k), ast.StringTerm(v))
	}
	return obj
}

// Reference renders a CheckRequest's attributes by walking the message, as
// OPA-Envoy renders them. The policy stage renders input.attributes from the
// Request instead (cheaper, and the same for both front ends); its tests
// hold that rendering to this one.
func Reference(check *authv3.CheckRequest) ast.Value {
	v := protoValue(check.ProtoReflect()).(ast.Object)
	attrs := v.Get(ast.StringTerm("attributes"))
	if attrs == nil {
		return ast.NewObject()
	}
	return attrs.Value
}
