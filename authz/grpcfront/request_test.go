package grpcfront

import (
	"errors"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

func TestNoHTTPIsRefused(t *testing.T) {
	for name, check := range map[string]*authv3.CheckRequest{
		"empty":      {},
		"no request": {Attributes: &authv3.AttributeContext{}},
		"no http":    {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}},
	} {
		if _, err := Request(check); !errors.Is(err, ErrNoHTTP) {
			t.Errorf("%s: err = %v, want ErrNoHTTP", name, err)
		}
	}
}

// TestHeaderMapFillsHeaders: with encode_raw_headers Envoy sends only
// header_map; the Request has both shapes, repeats joined in Headers and
// kept apart in Values.
func TestHeaderMapFillsHeaders(t *testing.T) {
	check := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "Authorization", RawValue: []byte("Bearer a")},
			{Key: "authorization", Value: "Basic b"},
			{Key: "x-other", Value: "1"},
		}}},
	}}}
	req, err := Request(check)
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Headers["authorization"]; got != "Bearer a,Basic b" {
		t.Errorf("Headers[authorization] = %q", got)
	}
	if got := req.Values("AUTHORIZATION"); len(got) != 2 || got[0] != "Bearer a" || got[1] != "Basic b" {
		t.Errorf("Values = %q", got)
	}
	if !req.HeaderMap[0].Raw || req.HeaderMap[1].Raw {
		t.Errorf("raw flags = %v %v", req.HeaderMap[0].Raw, req.HeaderMap[1].Raw)
	}
}

// A request that carries both shapes has one truth: header_map, for the
// token finder (Values) and the policy input (Headers) alike.
func TestHeaderMapWinsOverHeaders(t *testing.T) {
	check := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/",
			Headers: map[string]string{"authorization": "Basic b", "x-only-in-headers": "1"},
			HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: "Authorization", RawValue: []byte("Bearer a")},
			}}},
	}}}
	req, err := Request(check)
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Headers["authorization"]; got != "Bearer a" {
		t.Errorf("Headers[authorization] = %q, want header_map's", got)
	}
	if _, ok := req.Headers["x-only-in-headers"]; ok {
		t.Error("a header only in the headers map reached the policy's view")
	}
	if got := req.Values("authorization"); len(got) != 1 || got[0] != "Bearer a" {
		t.Errorf("Values = %q", got)
	}
}
