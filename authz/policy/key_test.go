package policy

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
)

// directVocabulary are paths the direct key encodes; tries made of random
// subsets of them exercise every branch of it.
var directVocabulary = []string{
	"attributes.request.http.method", "attributes.request.http.headers", "attributes.request.http.headers.x-user",
	"attributes.request.http.headers.authorization", "attributes.request.http.headers.nope", "attributes.request.http.path",
	"attributes.request.http.host", "attributes.request.http.id", "attributes.request.http.body",
	"attributes.request.http.query", "attributes.request.http.scheme", "attributes.request.http.protocol",
	"attributes.request.http.fragment", "attributes.contextExtensions", "attributes.contextExtensions.route",
	"attributes.contextExtensions.nope", "parsed_path", "parsed_query", "parsed_query.a", "parsed_query.view",
	"token", "token.claims", "token.claims.sub", "token.claims.tenant", "token.scopes", "token.issuer",
	"token.claims.nope.deeper", "version", "version.ext_authz", "source_principal",
}

// TestDirectKeyEqualsBuiltKey: the key encoded straight from the request
// equals the key of the built input, byte for byte, for the corpus
// policies' read paths and random sets of paths, over random requests.
func TestDirectKeyEqualsBuiltKey(t *testing.T) {
	var roots []*pathNode
	for _, cp := range policyCorpus(t) {
		if p := corpusEngine(t, cp, 16, nil).current.Load(); p.direct {
			roots = append(roots, p.reads.root)
		}
	}
	if len(roots) < 3 {
		t.Fatalf("only %d corpus policies take the direct key", len(roots))
	}
	r := rand.New(rand.NewPCG(5, 5))
	for range 200 {
		root := &pathNode{}
		for range 1 + r.IntN(6) {
			root.add(strings.Split(directVocabulary[r.IntN(len(directVocabulary))], "."))
		}
		root.finish()
		if !directOK(root) {
			t.Fatalf("direct key refuses %q", root.paths())
		}
		roots = append(roots, root)
	}
	var digest [32]byte
	direct := 0
	for i, root := range roots {
		p := &prepared{digest: digest, reads: &reads{root: root}, direct: true}
		for j := range 30 {
			req, tok := genRequest(rand.New(rand.NewPCG(uint64(i), uint64(j))))
			got, ok := p.directKey(req, tok)
			in, err := build(context.Background(), req, tok, DefaultBodyLimits(64), root)
			if err != nil {
				if ok {
					t.Fatalf("%q: direct key for an input that fails: %v", root.paths(), err)
				}
				continue
			}
			if !ok {
				continue // a part it could not parse
			}
			direct++
			if want := decisionKey(digest, in); got != want {
				t.Fatalf("%q: direct key differs from the built input's key\ninput %v", root.paths(), in)
			}
		}
	}
	if direct < 3000 {
		t.Fatalf("only %d direct keys compared", direct)
	}
}

// TestDirectKeyRefusesOtherShapes: what the direct key does not know falls
// back to building the input.
func TestDirectKeyRefusesOtherShapes(t *testing.T) {
	for _, path := range []string{"", "attributes", "attributes.source.address", "attributes.request.time",
		"attributes.request.http", "attributes.request.http.headerMap", "parsed_body", "truncated_body",
		"attributes.metadataContext.x", "attributes.request"} {
		root := &pathNode{}
		if path != "" {
			root.add(strings.Split(path, "."))
		} else {
			root.add(nil)
		}
		root.finish()
		if directOK(root) {
			t.Errorf("direct key accepts %q", root.paths())
		}
	}
}
