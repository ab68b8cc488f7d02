package policy

import (
	"encoding/base64"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tokenwise/tokenwise/authz/request"
)

// attributesValue renders input.attributes from the request in OPA-Envoy's
// shape (protojson field names, populated fields only), whichever front end
// built the request, so a policy written for OPA-Envoy reads the same paths
// over gRPC and HTTP. What only Envoy sends (metadata, the TLS session) comes
// from the request's More.
func attributesValue(r *request.Request) ast.Object {
	o := newObject(7)
	if p := peerValue(r.Source); p.Len() > 0 {
		o.value("source", p)
	}
	if p := peerValue(r.Destination); p.Len() > 0 {
		o.value("destination", p)
	}
	o.value("request", requestValue(r))
	o.strMap("contextExtensions", r.ContextExtensions)
	if r.More != nil {
		for name, v := range r.More() {
			o.value(name, v)
		}
	}
	return o.Object
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

func (o object) value(name string, v ast.Value) {
	o.Insert(ast.InternedTerm(name), ast.NewTerm(v))
}

func peerValue(p request.Peer) ast.Object {
	o := newObject(5)
	if p.Address != "" {
		sa := newObject(2)
		sa.str("address", p.Address)
		if p.Port != 0 {
			sa.value("portValue", ast.Number(strconv.FormatUint(uint64(p.Port), 10)))
		}
		addr := newObject(1)
		addr.value("socketAddress", sa.Object)
		o.value("address", addr.Object)
	}
	o.str("service", p.Service)
	o.strMap("labels", p.Labels)
	o.str("principal", p.Principal)
	o.str("certificate", p.Certificate)
	return o.Object
}

func requestValue(r *request.Request) ast.Object {
	o := newObject(2)
	if !r.Time.IsZero() {
		o.value("time", ast.String(request.TimeText(r.Time)))
	}
	o.value("http", httpValue(r))
	return o.Object
}

func httpValue(r *request.Request) ast.Object {
	o := newObject(13)
	o.str("id", r.ID)
	o.str("method", r.Method)
	o.strMap("headers", r.Headers)
	o.str("path", r.Path)
	o.str("host", r.Authority)
	o.str("scheme", r.Scheme)
	o.str("query", r.Query)
	o.str("fragment", r.Fragment)
	if r.Size != 0 {
		o.value("size", ast.Number(strconv.FormatInt(r.Size, 10)))
	}
	o.str("protocol", r.Protocol)
	o.str("body", r.Body)
	if len(r.RawBody) > 0 {
		o.value("rawBody", ast.String(base64.StdEncoding.EncodeToString(r.RawBody)))
	}
	if len(r.HeaderMap) > 0 {
		o.value("headerMap", headerMapValue(r.HeaderMap))
	}
	return o.Object
}

// headerMapValue renders header lines as Envoy's HeaderMap message:
// {"headers": [{"key": …, "value": …} or {"key": …, "rawValue": base64}]}.
func headerMapValue(lines []request.Header) ast.Object {
	terms := make([]*ast.Term, len(lines))
	for i, h := range lines {
		line := newObject(2)
		line.str("key", h.Name)
		if h.Raw {
			line.str("rawValue", base64.StdEncoding.EncodeToString([]byte(h.Value)))
		} else {
			line.str("value", h.Value)
		}
		terms[i] = ast.NewTerm(line.Object)
	}
	o := newObject(1)
	o.Insert(ast.InternedTerm("headers"), ast.ArrayTerm(terms...))
	return o.Object
}
