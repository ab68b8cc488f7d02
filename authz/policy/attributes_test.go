package policy

import (
	"testing"
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

func TestTypedAttributesRenderLikeTheReflectiveWalk(t *testing.T) {
	if !typedAttributes {
		t.Fatal("the compiled-in ext_authz protos have fields attributes.go does not know: update it")
	}
	for name, text := range map[string]string{"every field": everyField, "full request": fullRequest, "empty": `{}`, "empty attributes": `{"attributes": {}}`} {
		req := mustRequest(t, text)
		typed, reflective := checkRequestValue(req), protoValue(req.ProtoReflect())
		if typed.Compare(reflective) != 0 {
			t.Errorf("%s:\ntyped      %v\nreflective %v", name, typed, reflective)
		}
	}
}
