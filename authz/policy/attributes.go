package policy

import (
	"encoding/base64"
	"strconv"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkRequestValue is protoValue(req) for the messages Envoy fills on every
// Check, read with their typed getters instead of a reflective walk: the walk
// was most of the input's cost. Each hand-written message renders exactly as
// protoValue does (the fuzz test compares them); rarer messages (addresses,
// metadata, TLS session, header_map) still go through protoValue.
//
// A message whose descriptor has fields this code does not know (a newer
// go-control-plane) is rendered reflectively, so no field is ever dropped.
func checkRequestValue(req *authv3.CheckRequest) ast.Value {
	if !typedAttributes {
		return protoValue(req.ProtoReflect())
	}
	obj := ast.NewObjectWithCapacity(1)
	if a := req.GetAttributes(); a != nil {
		obj.Insert(ast.InternedTerm("attributes"), ast.NewTerm(attributesValue(a)))
	}
	return obj
}

// typedAttributes says the hand-written messages know every field of the
// compiled-in protos.
var typedAttributes = fieldCount(&authv3.CheckRequest{}) == 1 &&
	fieldCount(&authv3.AttributeContext{}) == 7 &&
	fieldCount(&authv3.AttributeContext_Peer{}) == 5 &&
	fieldCount(&authv3.AttributeContext_Request{}) == 2 &&
	fieldCount(&authv3.AttributeContext_HttpRequest{}) == 13

func fieldCount(m interface{ ProtoReflect() protoreflect.Message }) int {
	return m.ProtoReflect().Descriptor().Fields().Len()
}

// object collects the populated fields of one message.
type object struct{ ast.Object }

func newObject(n int) object { return object{ast.NewObjectWithCapacity(n)} }

func (o object) str(name, v string) {
	if v != "" {
		o.Insert(ast.InternedTerm(name), ast.StringTerm(v))
	}
}

func (o object) strMap(name string, m map[string]string) {
	if len(m) > 0 {
		o.Insert(ast.InternedTerm(name), ast.NewTerm(stringMapValue(m)))
	}
}

func (o object) message(name string, m protoreflect.ProtoMessage, isNil bool) {
	if !isNil {
		o.Insert(ast.InternedTerm(name), ast.NewTerm(protoValue(m.ProtoReflect())))
	}
}

func (o object) value(name string, v ast.Value) {
	o.Insert(ast.InternedTerm(name), ast.NewTerm(v))
}

func attributesValue(a *authv3.AttributeContext) ast.Value {
	o := newObject(7)
	if a.Source != nil {
		o.value("source", peerValue(a.Source))
	}
	if a.Destination != nil {
		o.value("destination", peerValue(a.Destination))
	}
	if a.Request != nil {
		o.value("request", requestValue(a.Request))
	}
	o.strMap("contextExtensions", a.ContextExtensions)
	o.message("metadataContext", a.MetadataContext, a.MetadataContext == nil)
	o.message("routeMetadataContext", a.RouteMetadataContext, a.RouteMetadataContext == nil)
	o.message("tlsSession", a.TlsSession, a.TlsSession == nil)
	return o.Object
}

func peerValue(p *authv3.AttributeContext_Peer) ast.Value {
	o := newObject(5)
	o.message("address", p.Address, p.Address == nil)
	o.str("service", p.Service)
	o.strMap("labels", p.Labels)
	o.str("principal", p.Principal)
	o.str("certificate", p.Certificate)
	return o.Object
}

func requestValue(r *authv3.AttributeContext_Request) ast.Value {
	o := newObject(2)
	if r.Time != nil {
		o.value("time", ast.String(timestampText(r.Time.AsTime())))
	}
	if r.Http != nil {
		o.value("http", httpValue(r.Http))
	}
	return o.Object
}

func httpValue(h *authv3.AttributeContext_HttpRequest) ast.Value {
	o := newObject(13)
	o.str("id", h.Id)
	o.str("method", h.Method)
	o.strMap("headers", h.Headers)
	o.str("path", h.Path)
	o.str("host", h.Host)
	o.str("scheme", h.Scheme)
	o.str("query", h.Query)
	o.str("fragment", h.Fragment)
	if h.Size != 0 {
		o.value("size", ast.Number(strconv.FormatInt(h.Size, 10)))
	}
	o.str("protocol", h.Protocol)
	o.str("body", h.Body)
	if len(h.RawBody) > 0 {
		o.value("rawBody", ast.String(base64.StdEncoding.EncodeToString(h.RawBody)))
	}
	o.message("headerMap", h.HeaderMap, h.HeaderMap == nil)
	return o.Object
}
