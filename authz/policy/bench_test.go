package policy

import (
	"context"
	"encoding/json"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/verify"
	"github.com/tokenwise/tokenwise/policies"
)

// benchRequest is a typical Check: a dozen headers, peers, a small JSON body.
const benchRequest = `{"attributes": {
  "source": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 51000}}},
  "destination": {"address": {"socketAddress": {"address": "10.0.0.2", "portValue": 8080}}},
  "request": {"time": "2024-05-01T12:00:00Z", "http": {
    "id": "1234567890", "method": "POST", "path": "/transfer?from=a&to=b", "host": "bank.example",
    "scheme": "https", "protocol": "HTTP/2", "size": 27,
    "headers": {":authority": "bank.example", ":method": "POST", ":path": "/transfer?from=a&to=b",
      ":scheme": "https", "accept": "application/json", "accept-encoding": "gzip, deflate, br",
      "authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "content-length": "27",
      "content-type": "application/json", "user-agent": "curl/8.5.0",
      "x-forwarded-proto": "https", "x-request-id": "5f0c7b8e-3a3c-4c9e-9b1a-1b2c3d4e5f60"},
    "body": "{\"amount\": 10, \"to\": \"bob\"}"}},
  "contextExtensions": {"route": "transfer"}}}`

func benchToken() *verify.Token {
	return &verify.Token{
		Issuer: "dev",
		Header: map[string]any{"alg": "ES256", "kid": "k1", "typ": "JWT"},
		Claims: map[string]any{"iss": "http://127.0.0.1:9192/dev", "sub": "alice", "jti": "j1",
			"aud": "tokenwise", "exp": json.Number("1900000000"), "iat": json.Number("1700000000"),
			"scope": "payments:transfer orders:read"},
		Scopes: []string{"payments:transfer", "orders:read"},
	}
}

// BenchmarkInput builds the input straight from the protobuf message.
func BenchmarkInput(b *testing.B) {
	req, tok := mustRequest(b, benchRequest), benchToken()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Input(req, tok, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInputProtojson is the baseline Input replaced: protojson to
// bytes, decode to map[string]any, convert to an ast.Value.
func BenchmarkInputProtojson(b *testing.B) {
	req := mustCheck(b, benchRequest)
	b.ReportAllocs()
	for b.Loop() {
		bs, err := protojson.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(bs, &m); err != nil {
			b.Fatal(err)
		}
		if _, err := ast.InterfaceToValue(m); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEngine loads the policy at the root of fsys, with the default
// decision cache, or none when uncached.
func benchEngine(b *testing.B, fsys fs.FS, uncached ...bool) *Engine {
	cfg := config.Default().Policy
	cfg.Paths = []string{"."}
	if len(uncached) > 0 && uncached[0] {
		zero := 0
		cfg.DecisionCacheSize = &zero
	}
	e, err := New(context.Background(), cfg, Options{FS: fsys})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkEval is one Decide with the bundled policy: after the first, a
// remembered decision (the key of what the policy reads, one lookup).
func BenchmarkEval(b *testing.B) {
	e := benchEngine(b, policies.FS)
	req, tok := mustRequest(b, benchRequest), benchToken()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.Decide(ctx, req, tok)
		if err != nil || !d.Allowed || d.MaxUses != 1 {
			b.Fatalf("%+v %v", d, err)
		}
	}
}

// BenchmarkEvalParallel is BenchmarkEval from many goroutines.
func BenchmarkEvalParallel(b *testing.B) {
	e := benchEngine(b, policies.FS)
	req, tok := mustRequest(b, benchRequest), benchToken()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Decide(ctx, req, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEvalTrivial is Decide with `allow := true`: the fixed cost of an
// evaluation, to set against BenchmarkEval's policy work.
func BenchmarkEvalTrivial(b *testing.B) {
	e := benchEngine(b, fstest.MapFS{"p.rego": {Data: []byte("package envoy.authz\n\nallow := true\n")}})
	req, tok := mustRequest(b, benchRequest), benchToken()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, req, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvalUncached is BenchmarkEval with the decision cache off: the
// input the policy reads, built, and an evaluation.
func BenchmarkEvalUncached(b *testing.B) {
	e := benchEngine(b, policies.FS, true)
	req, tok := mustRequest(b, benchRequest), benchToken()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.Decide(ctx, req, tok)
		if err != nil || !d.Allowed || d.MaxUses != 1 {
			b.Fatalf("%+v %v", d, err)
		}
	}
}
