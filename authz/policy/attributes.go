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
//
// Only what n can read is rendered (allNode: all of it): a field the policy
// never reads costs nothing.
func attributesValue(r *request.Request, n *pathNode) ast.Object {
	o := newObject(n, 7)
	if c := n.child("source"); c != nil {
		if p := peerValue(r.Source, c); p.Len() > 0 {
			o.value("source", p)
		}
	}
	if c := n.child("destination"); c != nil {
		if p := peerValue(r.Destination, c); p.Len() > 0 {
			o.value("destination", p)
		}
	}
	if c := n.child("request"); c != nil {
		o.value("request", requestValue(r, c))
	}
	o.strMap("contextExtensions", r.ContextExtensions)
	if r.More != nil && readsMore(n) {
		for name, v := range r.More() {
			if c := n.child(name); c != nil {
				o.value(name, selectValue(v, c))
			}
		}
	}
	return o.Object
}

// readsMore reports whether n can read a field only More renders (or one
// More may render in place of the plain one: a peer with an unusual address).
func readsMore(n *pathNode) bool {
	if n.all {
		return true
	}
	for name := range n.children {
		if name != "request" && name != "contextExtensions" {
			return true
		}
	}
	return false
}

// object collects the populated fields of one message that its node can read.
type object struct {
	ast.Object
	n *pathNode
}

func newObject(n *pathNode, size int) object {
	if !n.all && len(n.children) < size {
		size = len(n.children)
	}
	return object{ast.NewObjectWithCapacity(size), n}
}

func (o object) str(name, v string) {
	if v != "" && o.n.has(name) {
		o.Insert(keyTerm(name), ast.StringTerm(v))
	}
}

func (o object) strMap(name string, m map[string]string) {
	if len(m) > 0 {
		if c := o.n.child(name); c != nil {
			o.Insert(keyTerm(name), ast.NewTerm(stringMapValue(m, c)))
		}
	}
}

// value inserts v, which the caller rendered for o.n.child(name).
func (o object) value(name string, v ast.Value) {
	o.Insert(keyTerm(name), ast.NewTerm(v))
}

func peerValue(p request.Peer, n *pathNode) ast.Object {
	o := newObject(n, 5)
	if c := n.child("address"); c != nil && p.Address != "" {
		addr := newObject(c, 1)
		if sc := c.child("socketAddress"); sc != nil {
			sa := newObject(sc, 2)
			sa.str("address", p.Address)
			if p.Port != 0 && sc.has("portValue") {
				sa.value("portValue", ast.Number(strconv.FormatUint(uint64(p.Port), 10)))
			}
			addr.value("socketAddress", sa.Object)
		}
		o.value("address", addr.Object)
	}
	o.str("service", p.Service)
	o.strMap("labels", p.Labels)
	o.str("principal", p.Principal)
	o.str("certificate", p.Certificate)
	return o.Object
}

func requestValue(r *request.Request, n *pathNode) ast.Object {
	o := newObject(n, 2)
	if !r.Time.IsZero() && n.has("time") {
		o.value("time", ast.String(request.TimeText(r.Time)))
	}
	if c := n.child("http"); c != nil {
		o.value("http", httpValue(r, c))
	}
	return o.Object
}

func httpValue(r *request.Request, n *pathNode) ast.Object {
	o := newObject(n, 13)
	o.str("id", r.ID)
	o.str("method", r.Method)
	o.strMap("headers", r.Headers)
	o.str("path", r.Path)
	o.str("host", r.Authority)
	o.str("scheme", r.Scheme)
	o.str("query", r.Query)
	o.str("fragment", r.Fragment)
	if r.Size != 0 && n.has("size") {
		o.value("size", ast.Number(strconv.FormatInt(r.Size, 10)))
	}
	o.str("protocol", r.Protocol)
	o.str("body", r.Body)
	if len(r.RawBody) > 0 && n.has("rawBody") {
		o.value("rawBody", ast.String(base64.StdEncoding.EncodeToString(r.RawBody)))
	}
	if len(r.HeaderMap) > 0 && n.has("headerMap") {
		o.value("headerMap", headerMapValue(r.HeaderMap))
	}
	return o.Object
}

// headerMapValue renders header lines as Envoy's HeaderMap message:
// {"headers": [{"key": …, "value": …} or {"key": …, "rawValue": base64}]}.
// It is rendered whole: a policy reading it walks the array.
func headerMapValue(lines []request.Header) ast.Object {
	terms := make([]*ast.Term, len(lines))
	for i, h := range lines {
		line := newObject(allNode, 2)
		line.str("key", h.Name)
		if h.Raw {
			line.str("rawValue", base64.StdEncoding.EncodeToString([]byte(h.Value)))
		} else {
			line.str("value", h.Value)
		}
		terms[i] = ast.NewTerm(line.Object)
	}
	o := newObject(allNode, 1)
	o.Insert(keyTerm("headers"), ast.ArrayTerm(terms...))
	return o.Object
}

// stringMapValue renders a string map, or only the keys n can read.
func stringMapValue(m map[string]string, n *pathNode) ast.Object {
	if !n.all {
		obj := ast.NewObjectWithCapacity(len(n.children))
		for k, c := range n.children {
			if v, ok := m[k]; ok {
				obj.Insert(c.term, ast.StringTerm(v))
			}
		}
		return obj
	}
	obj := ast.NewObjectWithCapacity(len(m))
	for k, v := range m {
		obj.Insert(ast.InternedTerm(k), ast.StringTerm(v))
	}
	return obj
}

// selectValue keeps of v what n can read: objects keep only the keys below
// n; arrays and scalars are kept whole (a policy indexing an array may read
// any element).
func selectValue(v ast.Value, n *pathNode) ast.Value {
	obj, ok := v.(ast.Object)
	if n.all || !ok {
		return v
	}
	out := ast.NewObjectWithCapacity(len(n.children))
	for _, c := range n.children {
		if t := obj.Get(c.term); t != nil {
			out.Insert(c.term, ast.NewTerm(selectValue(t.Value, c)))
		}
	}
	return out
}

// keyTerms are the object keys of the input, made once: OPA interns only
// some strings, and each key made anew is an allocation per Check.
var keyTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range []string{"attributes", "parsed_path", "parsed_query", "parsed_body", "truncated_body",
		"version", "source_principal", "token", "source", "destination", "request", "contextExtensions",
		"address", "socketAddress", "portValue", "service", "labels", "principal", "certificate", "time",
		"http", "id", "method", "headers", "path", "host", "scheme", "query", "fragment", "size", "protocol",
		"body", "rawBody", "headerMap", "key", "value", "rawValue", "issuer", "header", "claims", "scopes"} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

// keyTerm is the term for an object key; shared, as OPA only reads input terms.
func keyTerm(k string) *ast.Term {
	if t, ok := keyTerms[k]; ok {
		return t
	}
	return ast.InternedTerm(k)
}
