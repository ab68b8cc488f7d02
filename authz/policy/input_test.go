package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tokenwise/tokenwise/authz/grpcfront"
	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// fullRequest has every kind of field Envoy sends: peers with socket
// addresses, labels, a timestamp, context extensions, metadata with a
// Struct, TLS session, and an HTTP request with a JSON body.
const fullRequest = `{
  "attributes": {
    "source": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 51000}},
               "principal": "spiffe://cluster.local/ns/a/sa/client", "labels": {"app": "web"}},
    "destination": {"address": {"socketAddress": {"address": "10.0.0.2", "portValue": 8080, "protocol": "UDP"}},
                    "service": "orders"},
    "request": {
      "time": "2024-05-01T12:00:00.5Z",
      "http": {
        "id": "42", "method": "POST", "path": "/api/v1/orders%2Fx/new?expand=items&tag=a&tag=b&empty=",
        "host": "shop.example", "scheme": "https", "protocol": "HTTP/2",
        "headers": {":path": "/api/v1/orders", "content-type": "application/json; charset=utf-8",
                    "content-length": "27", "x-request-id": "r1"},
        "body": "{\"item\": \"book\", \"n\": 2.5}  "
      }
    },
    "contextExtensions": {"route": "orders"},
    "metadataContext": {"filterMetadata": {"envoy.filters.http.jwt": {"user": "bob", "n": 3, "ok": true, "l": [1, "x"]}}},
    "tlsSession": {"sni": "shop.example"}
  }
}`

func mustCheck(t testing.TB, s string) *authv3.CheckRequest {
	t.Helper()
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal([]byte(s), req); err != nil {
		t.Fatal(err)
	}
	return req
}

// mustRequest is the Request the gRPC front end makes of a protojson CheckRequest.
func mustRequest(t testing.TB, s string) *request.Request {
	t.Helper()
	req, err := grpcfront.Request(mustCheck(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// inputJSON builds the input and returns it as plain JSON values.
func inputJSON(t *testing.T, req *request.Request, tok *verify.Token, maxBody int) map[string]any {
	t.Helper()
	v, err := Input(req, tok, maxBody)
	if err != nil {
		t.Fatalf("Input: %v", err)
	}
	x, err := ast.JSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, x).(map[string]any)
}

// roundTrip normalizes a value through encoding/json (numbers become float64).
func roundTrip(t *testing.T, x any) any {
	t.Helper()
	bs, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(bs, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func get(m any, path string) any {
	for _, k := range strings.Split(path, ".") {
		obj, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = obj[k]
	}
	return m
}

func TestInputAttributesMatchProtojson(t *testing.T) {
	in := inputJSON(t, mustRequest(t, fullRequest), nil, 0)

	// OPA-Envoy's attributes are the protojson rendering of the request
	// (lowerCamelCase names); tokenwise's direct builder must agree.
	bs, err := protojson.Marshal(mustCheck(t, fullRequest))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(bs, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in["attributes"], want["attributes"]) {
		got, _ := json.MarshalIndent(in["attributes"], "", " ")
		exp, _ := json.MarshalIndent(want["attributes"], "", " ")
		t.Errorf("attributes differ from protojson:\ngot  %s\nwant %s", got, exp)
	}
	for path, wantValue := range map[string]any{
		"attributes.source.address.socketAddress.portValue":                float64(51000),
		"attributes.destination.address.socketAddress.protocol":            "UDP",
		"attributes.contextExtensions.route":                               "orders",
		"attributes.metadataContext.filterMetadata.envoy.filters.http.jwt": nil, // dots are not nesting
		"attributes.request.time":                                          "2024-05-01T12:00:00.500Z",
		"attributes.request.http.headers.x-request-id":                     "r1",
		"source_principal":                                                 "spiffe://cluster.local/ns/a/sa/client",
	} {
		if got := get(in, path); !reflect.DeepEqual(got, wantValue) {
			t.Errorf("%s = %#v, want %#v", path, got, wantValue)
		}
	}
	jwt := get(in, "attributes.metadataContext.filterMetadata").(map[string]any)["envoy.filters.http.jwt"]
	if !reflect.DeepEqual(jwt, map[string]any{"user": "bob", "n": float64(3), "ok": true, "l": []any{float64(1), "x"}}) {
		t.Errorf("filter metadata = %#v", jwt)
	}
}

func TestInputParsedPathQueryBody(t *testing.T) {
	in := inputJSON(t, mustRequest(t, fullRequest), nil, 1<<20)
	want := map[string]any{
		"parsed_path":    []any{"api", "v1", "orders", "x", "new"}, // unescaped, then split, as OPA-Envoy does
		"parsed_query":   map[string]any{"expand": []any{"items"}, "tag": []any{"a", "b"}, "empty": []any{""}},
		"parsed_body":    map[string]any{"item": "book", "n": 2.5},
		"truncated_body": false,
		"version":        map[string]any{"encoding": "protojson", "ext_authz": "v3"},
		"token":          nil,
	}
	for k, w := range want {
		if got, ok := in[k]; !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, w)
		}
	}
}

func TestInputRootPath(t *testing.T) {
	in := inputJSON(t, mustRequest(t, `{"attributes":{"request":{"http":{"method":"GET","path":"/"}}}}`), nil, 0)
	if !reflect.DeepEqual(in["parsed_path"], []any{""}) || !reflect.DeepEqual(in["parsed_query"], map[string]any{}) {
		t.Errorf("parsed_path %#v parsed_query %#v", in["parsed_path"], in["parsed_query"])
	}
	if in["parsed_body"] != nil || in["truncated_body"] != false {
		t.Errorf("no body: parsed_body %#v truncated %#v", in["parsed_body"], in["truncated_body"])
	}
}

func TestInputBodyRules(t *testing.T) {
	cases := []struct {
		name          string
		http          string
		maxBody       int
		wantBody      any
		wantTruncated bool
	}{
		{"raw body when body empty", `"headers":{"content-type":"application/json"},"rawBody":"eyJhIjoxfQ=="`, 0, map[string]any{"a": float64(1)}, false},
		{"content-length larger than body", `"headers":{"content-type":"application/json","content-length":"100"},"body":"{\"a\":1}"`, 0, nil, true},
		{"envoy partial body flag", `"headers":{"content-type":"application/json","x-envoy-auth-partial-body":"true"},"body":"{\"a\":1}"`, 0, nil, true},
		{"longer than max body", `"headers":{"content-type":"application/json"},"body":"{\"a\":1}"`, 6, nil, true},
		{"exactly max body", `"headers":{"content-type":"application/json"},"body":"{\"a\":1}"`, 7, map[string]any{"a": float64(1)}, false},
		{"not json", `"headers":{"content-type":"text/plain"},"body":"{\"a\":1}"`, 0, nil, false},
		{"no content type", `"body":"{\"a\":1}"`, 0, nil, false},
		{"form", `"headers":{"content-type":"application/x-www-form-urlencoded"},"body":"a=1&a=2&b=x"`, 0, map[string]any{"a": []any{"1", "2"}, "b": []any{"x"}}, false},
		{"empty json body", `"headers":{"content-type":"application/json"}`, 0, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := mustRequest(t, `{"attributes":{"request":{"http":{"method":"POST","path":"/x",`+c.http+`}}}}`)
			in := inputJSON(t, req, nil, c.maxBody)
			if !reflect.DeepEqual(in["parsed_body"], c.wantBody) || in["truncated_body"] != c.wantTruncated {
				t.Errorf("parsed_body %#v truncated %v, want %#v %v", in["parsed_body"], in["truncated_body"], c.wantBody, c.wantTruncated)
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	for name, s := range map[string]string{
		"bad json body":      `{"attributes":{"request":{"http":{"path":"/x","headers":{"content-type":"application/json"},"body":"{nope"}}}}`,
		"trailing json":      `{"attributes":{"request":{"http":{"path":"/x","headers":{"content-type":"application/json"},"body":"{} {}"}}}}`,
		"bad path escape":    `{"attributes":{"request":{"http":{"path":"/a%zz"}}}}`,
		"bad query escape":   `{"attributes":{"request":{"http":{"path":"/a?b=%zz"}}}}`,
		"bad content-length": `{"attributes":{"request":{"http":{"path":"/x","headers":{"content-type":"application/json","content-length":"x"},"body":"{}"}}}}`,
	} {
		if _, err := Input(mustRequest(t, s), nil, 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestInputHeaderMap(t *testing.T) {
	req := mustRequest(t, `{"attributes":{"request":{"http":{"method":"POST","path":"/x","body":"{\"a\":true}",
	  "headerMap":{"headers":[
	    {"key":"Content-Type","rawValue":"YXBwbGljYXRpb24vanNvbg=="},
	    {"key":"x-multi","value":"1"},{"key":"X-Multi","rawValue":"Mg=="},
	    {"key":":path","value":"/x"}]}}}}}`)
	in := inputJSON(t, req, nil, 0)
	want := map[string]any{"content-type": "application/json", "x-multi": "1,2", ":path": "/x"}
	if got := get(in, "attributes.request.http.headers"); !reflect.DeepEqual(got, want) {
		t.Errorf("headers from header_map = %#v, want %#v", got, want)
	}
	if get(in, "attributes.request.http.headerMap") == nil {
		t.Error("headerMap itself should stay in the input")
	}
	// The synthesized headers drive body parsing as well.
	if !reflect.DeepEqual(in["parsed_body"], map[string]any{"a": true}) {
		t.Errorf("parsed_body = %#v", in["parsed_body"])
	}

	// Both shapes sent: header_map is the one truth, as for the token finder.
	req = mustRequest(t, `{"attributes":{"request":{"http":{"path":"/x","headers":{"a":"1"},
	  "headerMap":{"headers":[{"key":"b","value":"2"}]}}}}}`)
	in = inputJSON(t, req, nil, 0)
	if got := get(in, "attributes.request.http.headers"); !reflect.DeepEqual(got, map[string]any{"b": "2"}) {
		t.Errorf("headers = %#v", got)
	}
}

func TestInputToken(t *testing.T) {
	tok := &verify.Token{
		Issuer:  "corp",
		Header:  map[string]any{"alg": "RS256", "kid": "k1"},
		Claims:  map[string]any{"sub": "alice", "jti": "j1", "exp": json.Number("1700000000"), "aud": []any{"a", "b"}},
		Scopes:  []string{"orders:read", "orders:write"},
		Subject: "alice", ID: "j1",
	}
	in := inputJSON(t, mustRequest(t, `{"attributes":{"request":{"http":{"path":"/"}}}}`), tok, 0)
	want := map[string]any{
		"issuer": "corp",
		"format": "jwt",
		"header": map[string]any{"alg": "RS256", "kid": "k1"},
		"claims": map[string]any{"sub": "alice", "jti": "j1", "exp": float64(1700000000), "aud": []any{"a", "b"}},
		"scopes": []any{"orders:read", "orders:write"},
		"proof":  nil,
	}
	if !reflect.DeepEqual(in["token"], want) {
		t.Errorf("token = %#v, want %#v", in["token"], want)
	}

	// A token with no scopes or claims still has the keys, as empty values.
	in = inputJSON(t, mustRequest(t, `{"attributes":{"request":{"http":{"path":"/"}}}}`), &verify.Token{Issuer: "corp"}, 0)
	want = map[string]any{"issuer": "corp", "format": "jwt", "header": map[string]any{}, "claims": map[string]any{}, "scopes": []any{}, "proof": nil}
	if !reflect.DeepEqual(in["token"], want) {
		t.Errorf("empty token = %#v, want %#v", in["token"], want)
	}

	// An opaque token (checked by introspection) has no header: null.
	opaque := &verify.Token{Issuer: "hydra", Format: verify.FormatOpaque, Claims: map[string]any{"sub": "bob"}, Scopes: []string{"a"}}
	in = inputJSON(t, mustRequest(t, `{"attributes":{"request":{"http":{"path":"/"}}}}`), opaque, 0)
	want = map[string]any{"issuer": "hydra", "format": "opaque", "header": nil, "claims": map[string]any{"sub": "bob"}, "scopes": []any{"a"}, "proof": nil}
	if !reflect.DeepEqual(in["token"], want) {
		t.Errorf("opaque token = %#v, want %#v", in["token"], want)
	}
}

func TestInputTokenProof(t *testing.T) {
	for cnf, want := range map[string]any{"jkt": "dpop", "x5t#S256": "mtls"} {
		tok := &verify.Token{Issuer: "corp", Claims: map[string]any{"cnf": map[string]any{cnf: "thumb"}}}
		in := inputJSON(t, mustRequest(t, `{"attributes":{"request":{"http":{"path":"/"}}}}`), tok, 0)
		if got := get(in, "token.proof"); got != want {
			t.Errorf("cnf %s: proof = %#v; want %q", cnf, got, want)
		}
	}
}
