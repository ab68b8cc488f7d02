package policy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/grpcfront"
	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/verify"
	"github.com/tokenwise/tokenwise/policies"
)

// corpusPolicy is one policy the differential tests run.
type corpusPolicy struct {
	name  string
	fsys  fs.FS
	query string
}

// policyCorpus is the bundled policy with each library policy, the example
// deployment's policy, and the OPA-Envoy compatibility policies in
// testdata/opaenvoy.
func policyCorpus(t testing.TB) []corpusPolicy {
	t.Helper()
	out := []corpusPolicy{
		{"bundled", policies.FS, "data.envoy.authz.allow"},
		{"library/downloads", policies.FS, "data.tokenwise.library.downloads.allow"},
		{"library/stepup", policies.FS, "data.tokenwise.library.stepup.allow"},
		{"library/tenant", policies.FS, "data.tokenwise.library.tenant.allow"},
		{"examples/envoy", os.DirFS("../../examples/envoy/policies"), "data.envoy.authz.allow"},
	}
	files, err := filepath.Glob("testdata/opaenvoy/*.rego")
	if err != nil || len(files) == 0 {
		t.Fatalf("no OPA-Envoy policies in testdata/opaenvoy: %v", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusPolicy{"opaenvoy/" + filepath.Base(f), fstest.MapFS{"p.rego": {Data: src}}, "data.envoy.authz.allow"})
	}
	return out
}

// corpusEngine loads p with a decision cache of size entries.
func corpusEngine(t testing.TB, p corpusPolicy, size int, clock func() time.Time) *Engine {
	t.Helper()
	cfg := config.Default().Policy
	cfg.Paths, cfg.Query, cfg.MaxBodyBytes = []string{"."}, p.query, 64
	cfg.DecisionCacheSize = &size
	e, err := New(context.Background(), cfg, Options{FS: p.fsys, Clock: clock})
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return e
}

// unsignedJWT is a JWT io.jwt.decode reads (it does not check the signature).
func unsignedJWT(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims)) + ".c2ln"
}

// genRequest draws a request from small vocabularies, so requests repeat in
// the parts policies read while others (x-request-id, time) vary.
func genRequest(r *rand.Rand) (*request.Request, *verify.Token) {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	method := pick("GET", "GET", "POST", "HEAD", "DELETE")
	segments := []string{"orders", "42", "public", "status", "admin", "pay", "transfer", "tenants", "acme", "globex",
		"downloads", "report.pdf", "reports", ".", "..", "", "a%2Fb"}
	var path strings.Builder
	for range 1 + r.IntN(3) {
		path.WriteString("/" + segments[r.IntN(len(segments))])
	}
	path.WriteString(pick("", "", "?view=full", "?a=1", "?a=1&a=2&b=3", "?view=x&a=1"))
	headers := map[string]string{
		":authority": "api.example.com", ":method": method, ":path": path.String(), ":scheme": "https",
		"accept": "application/json", "user-agent": "curl/8", "x-request-id": fmt.Sprintf("%08x", r.Uint32()),
	}
	if r.IntN(2) == 0 {
		headers["x-request-id"] = "fixed"
	}
	for name, values := range map[string][]string{
		"x-user":      {"alice", "bob", "mallory", "eve"},
		"x-api-key":   {"k-123", "nope"},
		"x-tenant-id": {"acme", "globex", "none"},
		"authorization": {"Bearer " + unsignedJWT(`{"role":"guest","exp":1900000000}`),
			"Bearer " + unsignedJWT(`{"role":"admin","exp":1900000000}`), "Bearer " + unsignedJWT(`{"role":"guest","exp":1600000000}`)},
	} {
		if r.IntN(3) > 0 {
			headers[name] = values[r.IntN(len(values))]
		}
	}
	h := &authv3.AttributeContext_HttpRequest{Id: fmt.Sprint(r.IntN(1000)), Method: method, Path: path.String(),
		Host: "api.example.com", Scheme: "https", Protocol: "HTTP/1.1", Headers: headers}
	if method == "POST" {
		h.Body = pick(`{"amount": 10}`, `{"amount": 1000}`, `{"amount": 10, "note": "`+strings.Repeat("x", 80)+`"}`, `[1, 2]`, `a=1&b=2`, ``)
		headers["content-type"] = pick("application/json", "application/x-www-form-urlencoded", "text/plain")
	}
	if r.IntN(4) == 0 { // Envoy's other header shape
		for k, v := range headers {
			if h.HeaderMap == nil {
				h.HeaderMap = &corev3.HeaderMap{}
			}
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, Value: v})
		}
		h.Headers = nil
	}
	attrs := &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: pick("10.1.2.3", "203.0.113.7"),
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(40000 + r.IntN(3))}}}}},
		Request: &authv3.AttributeContext_Request{Time: timestamppb.New(time.Unix(1700000000+int64(r.IntN(5)), 0)), Http: h},
	}
	if r.IntN(2) == 0 {
		attrs.ContextExtensions = map[string]string{"route": pick("orders", "admin"), "scope": pick("orders:read", "payments:write"),
			"max_amount": pick("50", "5000")}
	}
	if r.IntN(5) == 0 {
		md, _ := structpb.NewStruct(map[string]any{"user": pick("bob", "alice")})
		attrs.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"jwt": md}}
	}
	if r.IntN(8) == 0 {
		attrs.Destination = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/s"}}}}
	}
	req, err := grpcfront.Request(&authv3.CheckRequest{Attributes: attrs})
	if err != nil {
		panic(err)
	}
	if r.IntN(10) == 0 {
		req.Frontend = request.FrontendHTTP
	}
	return req, genToken(r)
}

// genToken is nil (no token) or one of a few tokens differing in the claims
// and scopes policies read.
func genToken(r *rand.Rand) *verify.Token {
	if r.IntN(5) == 0 {
		return nil
	}
	scopes := [][]string{{"orders:read"}, {"orders:read", "orders:write"}, {"payments:write", "payments:transfer"}, {}}[r.IntN(4)]
	claims := map[string]any{"iss": "https://idp.test/", "sub": []string{"alice", "bob"}[r.IntN(2)],
		"jti": fmt.Sprint("j", r.IntN(3)), "exp": json.Number("1900000000"), "scope": strings.Join(scopes, " ")}
	if r.IntN(2) == 0 {
		claims["tenant"] = []any{"acme", "globex", []any{"acme", "globex"}}[r.IntN(3)]
	}
	if r.IntN(3) == 0 {
		claims["acr"] = []string{"mfa", "pwd"}[r.IntN(2)]
	}
	if r.IntN(3) == 0 {
		claims["download"] = "/downloads/report.pdf"
	}
	if r.IntN(6) == 0 {
		claims["one_time"] = true
	}
	return &verify.Token{Issuer: "corp", Header: map[string]any{"alg": "RS256", "kid": "k1"}, Claims: claims,
		Scopes: scopes, Subject: claims["sub"].(string), Expiry: time.Unix(1900000000, 0)}
}

// decisionJSON is the decision as bytes, for comparing answers byte for byte.
func decisionJSON(d Decision, err error) string {
	if err != nil {
		return "error"
	}
	b, merr := json.Marshal(d)
	if merr != nil {
		panic(merr)
	}
	return string(b)
}

// valueAt reads path in v as a policy would: object keys, and nothing
// below a non-object.
func valueAt(v ast.Value, path []string) (ast.Value, bool) {
	for _, key := range path {
		obj, ok := v.(ast.Object)
		if !ok {
			return nil, false
		}
		t := obj.Get(ast.StringTerm(key))
		if t == nil {
			return nil, false
		}
		v = t.Value
	}
	return v, true
}

// assertSameOnReadPaths: the input built for the policy holds the full
// rendering's value on every path the policy reads (both absent, or equal).
func assertSameOnReadPaths(t *testing.T, name string, p *prepared, req *request.Request, tok *verify.Token) {
	t.Helper()
	full, ferr := Input(req, tok, 64)
	lazy, lerr := build(context.Background(), req, tok, DefaultBodyLimits(64), p.reads.root)
	if ferr != nil {
		return // the lazy input may succeed where the full one fails: it parses less
	}
	if lerr != nil {
		t.Fatalf("%s: lazy input failed where the full one did not: %v", name, lerr)
	}
	for _, path := range p.reads.root.list() {
		f, fok := valueAt(full, path)
		l, lok := valueAt(lazy, path)
		if fok != lok || (fok && f.Compare(l) != 0) {
			t.Fatalf("%s: input.%s: lazy %v (%v), full %v (%v)", name, strings.Join(path, "."), l, lok, f, fok)
		}
	}
}

// TestDecisionCacheDifferential: for every corpus policy and random
// requests, the decision Decide gives (built lazily, remembered or not)
// equals a fresh evaluation of the full input, byte for byte; and the lazy
// input equals the full one on every path the policy reads. A small cache
// makes entries come and go.
func TestDecisionCacheDifferential(t *testing.T) {
	ctx := context.Background()
	for _, cp := range policyCorpus(t) {
		t.Run(cp.name, func(t *testing.T) {
			e := corpusEngine(t, cp, 16, nil)
			p := e.current.Load()
			r := rand.New(rand.NewPCG(1, uint64(len(cp.name))))
			pool := make([]int64, 40) // requests repeat: a pool of seeds
			for i := range pool {
				pool[i] = r.Int64()
			}
			hits, compared := 0, 0
			for range 600 {
				seed := pool[r.IntN(len(pool))]
				req, tok := genRequest(rand.New(rand.NewPCG(uint64(seed), 7)))
				assertSameOnReadPaths(t, cp.name, p, req, tok)
				full, err := Input(req, tok, 64)
				if err != nil {
					continue
				}
				if p.cache != nil {
					lazy, _ := build(context.Background(), req, tok, DefaultBodyLimits(64), p.reads.root)
					if _, ok := p.cache.get(decisionKey(p.digest, lazy), time.Now().UnixNano()); ok {
						hits++
					}
				}
				want := decisionJSON(e.Eval(ctx, full))
				got := decisionJSON(e.Decide(ctx, req, tok))
				if got != want {
					t.Fatalf("remembered or lazy decision %s, fresh evaluation %s (reads %q)", got, want, p.reads.root.paths())
				}
				compared++
			}
			if compared < 300 {
				t.Fatalf("only %d requests compared", compared)
			}
			if p.cache != nil && hits == 0 {
				t.Fatalf("the cache never hit in %d requests: the test proves nothing (reads %q)", compared, p.reads.root.paths())
			}
			t.Logf("reads %q, cache %s: %d compared, %d hits", p.reads.root.paths(), p.cacheState(), compared, hits)
		})
	}
}

// TestDecisionCacheConcurrent shares remembered decisions between many
// goroutines (run it with -race): each still equals a fresh evaluation.
func TestDecisionCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, cp := range policyCorpus(t)[:1] {
		e := corpusEngine(t, cp, 8, nil)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 3))
				for range 150 {
					req, tok := genRequest(rand.New(rand.NewPCG(uint64(r.IntN(10)), 7)))
					full, err := Input(req, tok, 64)
					if err != nil {
						continue
					}
					want := decisionJSON(e.Eval(ctx, full))
					d, err := e.Decide(ctx, req, tok)
					if got := decisionJSON(d, err); got != want {
						t.Errorf("got %s, want %s", got, want)
						return
					}
					// What a caller does with a decision must not reach the others.
					_ = append(d.Headers, Header{Name: "x-mine", Value: "1"})
				}
			}()
		}
		wg.Wait()
	}
}

// FuzzDecisionCache: requests made of arbitrary strings, decided twice
// through the cache (the second may be remembered), always equal a fresh
// evaluation of the full input, for every corpus policy; and the direct key
// equals the built input's.
func FuzzDecisionCache(f *testing.F) {
	engines := map[string]*Engine{}
	corpus := policyCorpus(f)
	for _, cp := range corpus {
		engines[cp.name] = corpusEngine(f, cp, 32, nil)
	}
	f.Add(uint8(0), uint64(1), "GET", "/orders/42", "x-user", "alice", "")
	f.Add(uint8(5), uint64(2), "POST", "/pay?x=%zz", "content-type", "application/json", `{"amount": 1}`)
	f.Add(uint8(9), uint64(3), "", "/%2e%2e/admin", "authorization", "Bearer x.y.z", `{"amount": "NaN"}`)
	f.Add(uint8(11), uint64(4), "HEAD", "//public//", "x-api-key", "k-123", "a=1&a=%")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, which uint8, seed uint64, method, path, hName, hValue, body string) {
		cp := corpus[int(which)%len(corpus)]
		e := engines[cp.name]
		req, tok := genRequest(rand.New(rand.NewPCG(seed, 7)))
		if method != "" {
			req.Method = method
		}
		if path != "" {
			req.Path = path
		}
		if hName != "" {
			req.Headers[strings.ToLower(hName)] = hValue
		}
		if body != "" {
			req.Body = body
		}
		p := e.current.Load()
		assertSameOnReadPaths(t, cp.name, p, req, tok)
		if k, ok := p.directKey(req, tok); ok {
			in, err := build(context.Background(), req, tok, DefaultBodyLimits(64), p.reads.root)
			if err != nil || decisionKey(p.digest, in) != k {
				t.Fatalf("%s: direct key differs from the built input's (%v)", cp.name, err)
			}
		}
		full, err := Input(req, tok, 64)
		if err != nil {
			return
		}
		want := decisionJSON(e.Eval(ctx, full))
		for range 2 {
			if got := decisionJSON(e.Decide(ctx, req, tok)); got != want {
				t.Fatalf("%s: decided %s, fresh evaluation %s", cp.name, got, want)
			}
		}
	})
}

// TestDecisionNeverOutlivesToken: a remembered decision is served until the
// exp of the token it was made for, and not from then on.
func TestDecisionNeverOutlivesToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	e := corpusEngine(t, corpusPolicy{"scopes", fstest.MapFS{"p.rego": {Data: []byte(
		"package envoy.authz\n\nallow if \"orders:read\" in input.token.scopes\n")}}, "data.envoy.authz.allow"}, 10, clock)
	p := e.current.Load()
	req := mustRequest(t, `{"attributes": {"request": {"http": {"method": "GET", "path": "/"}}}}`)
	tok := &verify.Token{Scopes: []string{"orders:read"}, Expiry: now.Add(10 * time.Second)}
	key := func() cacheKey {
		in, err := build(context.Background(), req, tok, DefaultBodyLimits(0), p.reads.root)
		if err != nil {
			t.Fatal(err)
		}
		return decisionKey(p.digest, in)
	}
	if d, err := e.Decide(context.Background(), req, tok); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	now = now.Add(9 * time.Second)
	if _, ok := p.cache.get(key(), now.UnixNano()); !ok {
		t.Fatal("not remembered before the token's exp")
	}
	now = now.Add(time.Second)
	if _, ok := p.cache.get(key(), now.UnixNano()); ok {
		t.Fatal("remembered at the token's exp")
	}
	if d, err := e.Decide(context.Background(), req, tok); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	if _, ok := p.cache.get(key(), now.UnixNano()); ok {
		t.Fatal("a decision for an expired token was stored")
	}
}

// TestDecisionCacheForgetsOnReload: a changed policy or data file starts
// an empty cache, and decisions follow the new data at once.
func TestDecisionCacheForgetsOnReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.rego"), "package envoy.authz\n\ndefault allow := false\n\nallow if input.parsed_path[0] in data.open\n")
	writeFile(t, filepath.Join(dir, "data.json"), `{"open": ["a"]}`)
	e, err := New(context.Background(), policyConfig(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	req := mustRequest(t, `{"attributes": {"request": {"http": {"method": "GET", "path": "/a"}}}}`)
	if d, err := e.Decide(context.Background(), req, nil); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	if n := e.current.Load().cache.len(); n != 1 {
		t.Fatalf("%d remembered, want 1", n)
	}
	writeFile(t, filepath.Join(dir, "data.json"), `{"open": ["b"]}`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.current.Load().cache.len(); n != 0 {
		t.Fatalf("%d remembered after the data changed, want 0", n)
	}
	if d, err := e.Decide(context.Background(), req, nil); err != nil || d.Allowed {
		t.Fatalf("after the data change: %+v %v, want a deny", d, err)
	}
}

// TestDecisionCacheBounded: never more than size entries; failures are
// never remembered.
func TestDecisionCacheBounded(t *testing.T) {
	c := newDecisionCache(5)
	for i := range 100 {
		c.put(cacheKey{byte(i), byte(i >> 8)}, Decision{Allowed: true}, 0, 0)
		if n := c.len(); n > 5 {
			t.Fatalf("%d entries, bound 5", n)
		}
	}
	if _, ok := c.get(cacheKey{99}, 0); !ok {
		t.Fatal("the newest entry is gone")
	}
	if newDecisionCache(0) != nil {
		t.Fatal("size 0 is a cache")
	}

	e := corpusEngine(t, corpusPolicy{"conflict", fstest.MapFS{"p.rego": {Data: []byte(
		"package envoy.authz\n\nallow := input.parsed_path[0]\n")}}, "data.envoy.authz.allow"}, 10, nil)
	req := mustRequest(t, `{"attributes": {"request": {"http": {"method": "GET", "path": "/a"}}}}`)
	if _, err := e.Decide(context.Background(), req, nil); err == nil {
		t.Fatal("a string decision was accepted")
	}
	if n := e.current.Load().cache.len(); n != 0 {
		t.Fatalf("a failed decision was remembered (%d entries)", n)
	}
}

// TestBodyParsedOnlyWhenRead: a policy that cannot read parsed_body never
// pays for (or fails on) parsing the body; one that can, does.
func TestBodyParsedOnlyWhenRead(t *testing.T) {
	req := mustRequest(t, `{"attributes": {"request": {"http": {"method": "POST", "path": "/",
		"headers": {"content-type": "application/json"}, "body": "{not json"}}}}`)
	ctx := context.Background()
	noBody := corpusEngine(t, corpusPolicy{"method", fstest.MapFS{"p.rego": {Data: []byte(
		"package envoy.authz\n\nallow if input.attributes.request.http.method == \"POST\"\n")}}, "data.envoy.authz.allow"}, 10, nil)
	if d, err := noBody.Decide(ctx, req, nil); err != nil || !d.Allowed {
		t.Fatalf("policy not reading the body: %+v %v", d, err)
	}
	in, _ := build(context.Background(), req, nil, DefaultBodyLimits(64), noBody.current.Load().reads.root)
	if in.(ast.Object).Get(ast.StringTerm("parsed_body")) != nil {
		t.Fatal("parsed_body built for a policy that cannot read it")
	}
	withBody := corpusEngine(t, corpusPolicy{"body", fstest.MapFS{"p.rego": {Data: []byte(
		"package envoy.authz\n\nallow if input.parsed_body.a == 1\n")}}, "data.envoy.authz.allow"}, 10, nil)
	if _, err := withBody.Decide(ctx, req, nil); err == nil {
		t.Fatal("a malformed body was accepted by a policy that reads it")
	}
}
