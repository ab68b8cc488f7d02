package policy

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tokenwise/tokenwise/authz/pop"
	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// versions are input.version by front end: OPA-Envoy's for ext_authz v3
// over gRPC, and "http" for HTTP authorization mode.
var versions = map[string]ast.Value{
	request.FrontendGRPC: ast.NewObject(
		[2]*ast.Term{ast.StringTerm("encoding"), ast.StringTerm("protojson")},
		[2]*ast.Term{ast.StringTerm("ext_authz"), ast.StringTerm("v3")},
	),
	request.FrontendHTTP: ast.NewObject(
		[2]*ast.Term{ast.StringTerm("encoding"), ast.StringTerm("protojson")},
		[2]*ast.Term{ast.StringTerm("ext_authz"), ast.StringTerm("http")},
	),
}

func versionValue(frontend string) ast.Value {
	if v, ok := versions[frontend]; ok {
		return v
	}
	return versions[request.FrontendGRPC]
}

// Input builds the Rego input for req and tok as an ast.Value, in
// OPA-Envoy's shape plus token:
//
//   - attributes: the CheckRequest attributes with JSON field names, as
//     OPA-Envoy renders them (request.http.headers, source.address.socketAddress,
//     contextExtensions, metadataContext, ...). When Envoy sent only header_map
//     (encode_raw_headers), request.http.headers is filled from it too
//     (names lowercased, repeated names joined with ","), so policies see one shape.
//   - parsed_path: the unescaped path split on "/", without the query.
//   - parsed_query: each query parameter name to the array of its values.
//   - parsed_body: the JSON (or form) body, null when there is none, it is
//     not parsed, or it is truncated; truncated_body says whether it was cut
//     short by Envoy or is longer than maxBody (maxBody <= 0: no cap).
//   - version: {"encoding": "protojson", "ext_authz": "v3"}.
//   - source_principal: attributes.source.principal when set, as OPA-Envoy does.
//   - token: null when tok is nil, else {issuer, format, header, claims, scopes};
//     format is "jwt" or "opaque", and an opaque token's header is null.
//
// An error (bad path or query escapes, a malformed JSON body) means the
// request cannot be judged; the caller denies it.
func Input(req *request.Request, tok *verify.Token, maxBody int) (ast.Value, error) {
	return build(context.Background(), req, tok, DefaultBodyLimits(maxBody), allNode)
}

// build renders the parts of the input that n can read, and nothing else:
// allNode renders all of it. Parsing (path, query, body) happens only for a
// part n reads, so only such a part's faults are errors. On every path n
// reads, the value equals the full rendering's (input_test holds it to that).
// The body's parse is bounded by limits; waiting for a parse slot ends with ctx.
func build(ctx context.Context, req *request.Request, tok *verify.Token, limits BodyLimits, n *pathNode) (ast.Value, error) {
	input := ast.NewObjectWithCapacity(9)
	if c := n.child("attributes"); c != nil {
		input.Insert(keyTerm("attributes"), ast.NewTerm(attributesValue(req, c)))
	}
	rawPath, rawQuery, _ := strings.Cut(req.Path, "?")
	if n.has("parsed_path") {
		v, err := parsedPath(rawPath)
		if err != nil {
			return nil, err
		}
		input.Insert(keyTerm("parsed_path"), ast.NewTerm(v))
	}
	if c := n.child("parsed_query"); c != nil {
		v, err := parsedQuery(rawQuery)
		if err != nil {
			return nil, err
		}
		input.Insert(keyTerm("parsed_query"), ast.NewTerm(selectValue(v, c)))
	}
	if n.has("parsed_body") || n.has("truncated_body") {
		body, truncated, err := parseBody(ctx, req.Headers, req.Body, req.RawBody, limits)
		if err != nil {
			return nil, err
		}
		if c := n.child("parsed_body"); c != nil {
			input.Insert(keyTerm("parsed_body"), ast.NewTerm(selectValue(body, c)))
		}
		if n.has("truncated_body") {
			input.Insert(keyTerm("truncated_body"), ast.InternedTerm(truncated))
		}
	}
	if n.has("version") {
		input.Insert(keyTerm("version"), ast.NewTerm(versionValue(req.Frontend)))
	}
	if p := req.Source.Principal; p != "" && n.has("source_principal") {
		input.Insert(keyTerm("source_principal"), ast.StringTerm(p))
	}
	if c := n.child("token"); c != nil {
		tokenValue, err := tokenInput(tok)
		if err != nil {
			return nil, err
		}
		input.Insert(keyTerm("token"), ast.NewTerm(selectValue(tokenValue, c)))
	}
	return input, nil
}

// parsedPath splits the path (without its query) as OPA-Envoy does: it is
// unescaped, trimmed of leading slashes and split on "/".
func parsedPath(rawPath string) (ast.Value, error) {
	decoded, err := url.PathUnescape(rawPath)
	if err != nil {
		return nil, fmt.Errorf("request path: %w", err)
	}
	segments := strings.Split(strings.TrimLeft(decoded, "/"), "/")
	terms := make([]*ast.Term, len(segments))
	for i, s := range segments {
		terms[i] = ast.StringTerm(s)
	}
	return ast.NewArray(terms...), nil
}

// parsedQuery parses the query strictly, as OPA-Envoy does.
func parsedQuery(rawQuery string) (ast.Value, error) {
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("request query: %w", err)
	}
	return valuesObject(query), nil
}

// valuesObject renders url.Values as name → array of values.
func valuesObject(values url.Values) ast.Object {
	obj := ast.NewObjectWithCapacity(len(values))
	for name, vs := range values {
		terms := make([]*ast.Term, len(vs))
		for i, v := range vs {
			terms[i] = ast.StringTerm(v)
		}
		obj.Insert(ast.InternedTerm(name), ast.ArrayTerm(terms...))
	}
	return obj
}

// tokenInput is input.token: its documented shape and nothing more, so the raw
// token can never reach the policy or a decision log that dumps the input.
func tokenInput(tok *verify.Token) (ast.Value, error) {
	if tok == nil {
		return ast.NullValue, nil
	}
	// The token's part of the input depends on the token alone, so a token
	// reused across Checks is converted once. OPA only reads input values,
	// so concurrent evaluations can share it.
	r := tok.Derived(tokenInputKey{}, func() any {
		v, err := buildTokenInput(tok)
		return derivedInput{v, err}
	}).(derivedInput)
	return r.value, r.err
}

type tokenInputKey struct{}

type derivedInput struct {
	value ast.Value
	err   error
}

func buildTokenInput(tok *verify.Token) (ast.Value, error) {
	header, err := anyMapValue(tok.Header)
	if err != nil {
		return nil, fmt.Errorf("token header: %w", err)
	}
	if tok.Format == verify.FormatOpaque {
		header = ast.NullValue // an opaque token has no header
	}
	format := tok.Format
	if format == "" {
		format = verify.FormatJWT // a Token made by hand (tests, tools)
	}
	claims, err := anyMapValue(tok.Claims)
	if err != nil {
		return nil, fmt.Errorf("token claims: %w", err)
	}
	scopes := make([]*ast.Term, len(tok.Scopes))
	for i, s := range tok.Scopes {
		scopes[i] = ast.StringTerm(s)
	}
	return ast.NewObject(
		[2]*ast.Term{keyTerm("issuer"), ast.StringTerm(tok.Issuer)},
		[2]*ast.Term{keyTerm("format"), ast.StringTerm(format)},
		[2]*ast.Term{keyTerm("header"), ast.NewTerm(header)},
		[2]*ast.Term{keyTerm("claims"), ast.NewTerm(claims)},
		[2]*ast.Term{keyTerm("scopes"), ast.ArrayTerm(scopes...)},
		[2]*ast.Term{keyTerm("proof"), proofTerm(tok)},
	), nil
}

// proofTerm is input.token.proof: "dpop", "mtls" or null. A token reaches
// the policy only after its binding was proven, so the binding names the
// proof that was checked.
func proofTerm(tok *verify.Token) *ast.Term {
	if kind := pop.ProofKind(tok.Claims["cnf"]); kind != "" {
		return ast.StringTerm(kind)
	}
	return ast.NullTerm()
}

// anyMapValue converts decoded JSON; a nil map is an empty object, not null,
// so policies can always index into it.
func anyMapValue(m map[string]any) (ast.Value, error) {
	if m == nil {
		return ast.NewObject(), nil
	}
	return ast.InterfaceToValue(m)
}
