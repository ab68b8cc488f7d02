package policy

import (
	"crypto/sha256"
	"net/url"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// The direct key: for the common shapes of what a policy reads (request
// line fields, some headers, the parsed path and query, the token, the
// route's context extensions) the decision key is encoded straight from the
// request, without building the Rego input: a remembered decision then costs
// no input at all. The bytes are exactly those decisionKey encodes from the
// built input (key_test holds the two to that, over random requests and
// paths), so both ways find the same decisions. Anything else falls back to
// building the input.

// directFields are the fields the direct key encodes, by level.
var directFields = map[string][]string{
	"input":      {"attributes", "parsed_path", "parsed_query", "source_principal", "token", "version"},
	"attributes": {"contextExtensions", "request"},
	"request":    {"http"},
	"http":       {"body", "fragment", "headers", "host", "id", "method", "path", "protocol", "query", "scheme"},
}

// finish sorts each node's children, for encoding in key order.
func (n *pathNode) finish() {
	n.sorted = n.sorted[:0]
	for name, c := range n.children {
		n.sorted = append(n.sorted, name)
		c.finish()
	}
	slices.Sort(n.sorted)
}

// directOK reports whether the direct key can encode what root reads.
func directOK(root *pathNode) bool {
	if !within(root, "input") {
		return false
	}
	attrs := root.children["attributes"]
	if attrs == nil {
		return true
	}
	if !within(attrs, "attributes") {
		return false
	}
	req := attrs.children["request"]
	if req == nil {
		return true
	}
	if !within(req, "request") {
		return false
	}
	h := req.children["http"]
	return h == nil || within(h, "http")
}

// within: n is not read whole, and reads only fields of level the direct key knows.
func within(n *pathNode, level string) bool {
	if n.all {
		return false
	}
	for name := range n.children {
		if !slices.Contains(directFields[level], name) {
			return false
		}
	}
	return true
}

// directKey is decisionKey(p.digest, build(req, tok, …, p.reads.root)),
// computed without building the input; ok is false when it cannot be (a
// shape it does not know, or a part that fails to parse: build says why).
func (p *prepared) directKey(req *request.Request, tok *verify.Token) (k cacheKey, ok bool) {
	if !p.direct {
		return k, false
	}
	e := keyEncoders.Get().(*keyEncoder)
	defer keyEncoders.Put(e)
	e.b = append(e.b[:0], p.digest[:]...)
	e.failed = false
	e.input(req, tok, p.reads.root)
	if e.failed {
		return k, false
	}
	return cacheKey(sha256.Sum256(e.b)), true
}

// beginObject starts an object whose size is patched by endObject: one
// byte, so an object of 128 keys or more cannot be encoded this way.
func (e *keyEncoder) beginObject() int {
	e.b = append(e.b, 'o', 0)
	return len(e.b) - 1
}

func (e *keyEncoder) endObject(at, n int) {
	if n >= 0x80 {
		e.failed = true
		return
	}
	e.b[at] = byte(n)
}

func (e *keyEncoder) input(req *request.Request, tok *verify.Token, n *pathNode) {
	at, count := e.beginObject(), 0
	rawPath, rawQuery, _ := strings.Cut(req.Path, "?")
	for _, name := range n.sorted {
		c := n.children[name]
		switch name {
		case "attributes":
			e.str('s', name)
			e.attributes(req, c)
		case "parsed_path":
			e.str('s', name)
			e.parsedPath(rawPath)
		case "parsed_query":
			v, err := parsedQuery(rawQuery)
			if err != nil {
				e.failed = true
				return
			}
			e.str('s', name)
			e.selected(v, c)
		case "source_principal":
			if req.Source.Principal == "" {
				continue
			}
			e.str('s', name)
			e.str('s', req.Source.Principal)
		case "token":
			if tok != nil && tokenFieldsOnly(c) {
				e.str('s', name)
				e.tokenFields(tok, c)
				break
			}
			v, err := tokenInput(tok)
			if err != nil {
				e.failed = true
				return
			}
			e.str('s', name)
			e.selected(v, c)
		case "version":
			e.str('s', name)
			e.value(versionValue(req.Frontend)) // build renders it whole
		}
		count++
	}
	e.endObject(at, count)
}

func (e *keyEncoder) attributes(req *request.Request, n *pathNode) {
	at, count := e.beginObject(), 0
	for _, name := range n.sorted {
		c := n.children[name]
		switch name {
		case "contextExtensions":
			if len(req.ContextExtensions) == 0 {
				continue
			}
			e.str('s', name)
			e.strMap(req.ContextExtensions, c)
		case "request":
			e.str('s', name)
			e.request(req, c)
		}
		count++
	}
	e.endObject(at, count)
}

func (e *keyEncoder) request(req *request.Request, n *pathNode) {
	at, count := e.beginObject(), 0
	if c := n.children["http"]; c != nil {
		e.str('s', "http")
		e.http(req, c)
		count++
	}
	e.endObject(at, count)
}

func (e *keyEncoder) http(r *request.Request, n *pathNode) {
	at, count := e.beginObject(), 0
	for _, name := range n.sorted {
		if name == "headers" {
			if len(r.Headers) > 0 {
				e.str('s', name)
				e.strMap(r.Headers, n.children[name])
				count++
			}
			continue
		}
		if v := httpString(r, name); v != "" {
			e.str('s', name)
			e.str('s', v)
			count++
		}
	}
	e.endObject(at, count)
}

// httpString is the string field name of input.attributes.request.http.
func httpString(r *request.Request, name string) string {
	switch name {
	case "body":
		return r.Body
	case "fragment":
		return r.Fragment
	case "host":
		return r.Authority
	case "id":
		return r.ID
	case "method":
		return r.Method
	case "path":
		return r.Path
	case "protocol":
		return r.Protocol
	case "query":
		return r.Query
	case "scheme":
		return r.Scheme
	}
	return ""
}

// strMap encodes stringMapValue(m, n).
func (e *keyEncoder) strMap(m map[string]string, n *pathNode) {
	if n.all {
		e.value(stringMapValue(m, allNode)) // sorted keys: let OPA's object sort them
		return
	}
	at, count := e.beginObject(), 0
	for _, name := range n.sorted {
		if v, ok := m[name]; ok {
			e.str('s', name)
			e.str('s', v)
			count++
		}
	}
	e.endObject(at, count)
}

// selected encodes selectValue(v, n).
func (e *keyEncoder) selected(v ast.Value, n *pathNode) {
	obj, ok := v.(ast.Object)
	if n.all || !ok {
		e.value(v)
		return
	}
	at, count := e.beginObject(), 0
	for _, name := range n.sorted {
		c := n.children[name]
		if t := obj.Get(c.term); t != nil {
			e.str('s', name)
			e.selected(t.Value, c)
			count++
		}
	}
	e.endObject(at, count)
}

// parsedPath encodes parsedPath(rawPath).
func (e *keyEncoder) parsedPath(rawPath string) {
	decoded, err := url.PathUnescape(rawPath)
	if err != nil {
		e.failed = true
		return
	}
	rest := strings.TrimLeft(decoded, "/")
	e.size('a', strings.Count(rest, "/")+1)
	for {
		seg, after, found := strings.Cut(rest, "/")
		e.str('s', seg)
		if !found {
			return
		}
		rest = after
	}
}

// tokenFieldsOnly: n reads only input.token.issuer and input.token.scopes,
// which the direct key encodes from the token itself, so a token seen for
// the first time is not converted for the policy just to be keyed.
func tokenFieldsOnly(n *pathNode) bool {
	if n.all {
		return false
	}
	for name := range n.children {
		if name != "issuer" && name != "scopes" {
			return false
		}
	}
	return true
}

// tokenFields encodes selectValue(tokenInput(tok), n) for tokenFieldsOnly(n):
// issuer a string, scopes an array of strings, both always present.
func (e *keyEncoder) tokenFields(tok *verify.Token, n *pathNode) {
	e.size('o', len(n.sorted))
	for _, name := range n.sorted {
		e.str('s', name)
		if name == "issuer" {
			e.str('s', tok.Issuer)
			continue
		}
		e.size('a', len(tok.Scopes))
		for _, s := range tok.Scopes {
			e.str('s', s)
		}
	}
}
