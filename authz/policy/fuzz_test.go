package policy

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tokenwise/tokenwise/authz/grpcfront"
)

// fuzzMaxBody is small so the fuzzer reaches the truncation rules.
const fuzzMaxBody = 256

// FuzzInput builds the Rego input from CheckRequests made of arbitrary
// strings and bytes, in both of Envoy's header shapes. Input must never
// panic; when it succeeds the input is an object with the http request, a
// boolean truncated_body, and a parsed_body that is null whenever the body
// is truncated (a body over the cap is never parsed).
func FuzzInput(f *testing.F) {
	f.Add("GET", "/a/b?x=1&x=2", "x-h", "v", "application/json", "", `{"a":[1,2,{"b":null}]}`, []byte(nil), false)
	f.Add("POST", "/%zz?%zz", "content-length", "abc", "application/x-www-form-urlencoded", "3", "a=1&b=%zz", []byte("x"), true)
	f.Add("POST", "/", "x", "\xff", "application/json; charset=\xff", "99999999999999999999", "", []byte(`[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]`), true)
	f.Add("", "", "", "", "text/plain", "-1", strings.Repeat("[", 300), []byte{0, 1, 2}, false)
	f.Add("PUT", "/"+strings.Repeat("a/", 100), ":path", "/", "application/json", "", `{"a":1,"a":2}`, []byte(nil), false)
	f.Fuzz(func(t *testing.T, method, path, hName, hValue, contentType, contentLength, body string, rawBody []byte, headerMap bool) {
		check := fuzzCheckRequest(method, path, hName, hValue, contentType, contentLength, body, rawBody, headerMap)
		assertRendersLikeReference(t, "fuzz", check)
		req, _ := grpcfront.Request(check)
		v, err := Input(req, nil, fuzzMaxBody)
		if err != nil {
			return // the caller denies; what matters is no panic
		}
		obj, ok := v.(ast.Object)
		if !ok {
			t.Fatalf("input is %T, want an object", v)
		}
		truncated, ok := obj.Get(ast.StringTerm("truncated_body")).Value.(ast.Boolean)
		if !ok {
			t.Fatal("truncated_body is not a boolean")
		}
		parsed := obj.Get(ast.StringTerm("parsed_body")).Value
		if truncated && parsed.Compare(ast.NullValue) != 0 {
			t.Fatal("a truncated body was parsed")
		}
		size := len(body)
		if size == 0 {
			size = len(rawBody)
		}
		if size > fuzzMaxBody && parsed.Compare(ast.NullValue) != 0 {
			t.Fatalf("a body of %d bytes over the %d cap was parsed", size, fuzzMaxBody)
		}
		if obj.Get(ast.StringTerm("attributes")) == nil || obj.Get(ast.StringTerm("parsed_path")) == nil {
			t.Fatal("input lacks attributes or parsed_path")
		}
	})
}

func fuzzCheckRequest(method, path, hName, hValue, contentType, contentLength, body string, rawBody []byte, headerMap bool) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Body: body, RawBody: rawBody}
	headers := map[string]string{hName: hValue, "content-type": contentType}
	if contentLength != "" {
		headers["content-length"] = contentLength
	}
	if headerMap {
		h.HeaderMap = &corev3.HeaderMap{}
		for k, v := range headers {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
	} else {
		h.Headers = headers
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}
