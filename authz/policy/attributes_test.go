package policy

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tokenwise/tokenwise/authz/grpcfront"
)

// everyField sets every field of the hand-written messages.
const everyField = `{
  "attributes": {
    "source": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 51000}}, "service": "web",
               "labels": {"app": "web"}, "principal": "spiffe://a", "certificate": "-----BEGIN%20CERTIFICATE"},
    "destination": {"address": {"pipe": {"path": "/tmp/s"}}},
    "request": {"time": "2024-05-01T12:00:00.123456Z",
      "http": {"id": "1", "method": "GET", "headers": {"a": "b"}, "path": "/p", "host": "h", "scheme": "https",
               "query": "q=1", "fragment": "f", "size": "9007199254740993", "protocol": "HTTP/1.1", "body": "x",
               "rawBody": "AAEC", "headerMap": {"headers": [{"key": "k", "rawValue": "dg=="}]}}},
    "contextExtensions": {"route": "r"},
    "metadataContext": {"filterMetadata": {"f": {"n": 1}}},
    "routeMetadataContext": {"typedFilterMetadata": {}},
    "tlsSession": {"sni": "s"}
  }
}`

// TestAttributesRenderLikeOPAEnvoy: input.attributes rendered from the
// converted Request equals the reflective walk over the CheckRequest
// (OPA-Envoy's rendering), except that headers are filled from header_map
// whenever Envoy sent one: header_map is then the one truth.
func TestAttributesRenderLikeOPAEnvoy(t *testing.T) {
	for name, text := range map[string]string{"every field": everyField, "full request": fullRequest, "empty http": `{"attributes": {"request": {"http": {}}}}`} {
		check := mustCheck(t, text)
		assertRendersLikeReference(t, name, check)
	}
}

func assertRendersLikeReference(t *testing.T, name string, check *authv3.CheckRequest) {
	t.Helper()
	req, err := grpcfront.Request(check)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	want := grpcfront.Reference(check).(ast.Object)
	if h := check.GetAttributes().GetRequest().GetHttp(); len(h.GetHeaderMap().GetHeaders()) > 0 {
		httpObj := want.Get(ast.StringTerm("request")).Value.(ast.Object).Get(ast.StringTerm("http")).Value.(ast.Object)
		httpObj.Insert(ast.StringTerm("headers"), ast.NewTerm(stringMapValue(req.Headers, allNode)))
	}
	if got := attributesValue(req, allNode); got.Compare(want) != 0 {
		t.Errorf("%s:\nrendered  %v\nreference %v", name, got, want)
	}
}
