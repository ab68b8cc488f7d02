package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// keyBuffers recycles the buffers keys are encoded in.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// decisionKey is the cache key of an input built for the paths a policy
// reads: SHA-256 over the policy's digest (its modules and data) and an
// unambiguous encoding of the input. Such an input holds exactly the values
// at the paths the policy reads, so equal keys mean equal values there, and
// a deterministic policy decides them equally.
func decisionKey(digest [32]byte, input ast.Value) cacheKey {
	bp := keyBuffers.Get().(*[]byte)
	b := append((*bp)[:0], digest[:]...)
	b = appendValue(b, input)
	k := cacheKey(sha256.Sum256(b))
	*bp = b
	keyBuffers.Put(bp)
	return k
}

// appendValue appends an encoding of v from which v can be read back: every
// value starts with its kind, strings and collections with their length;
// object keys come in their sorted order, so equal objects encode equally.
func appendValue(b []byte, v ast.Value) []byte {
	switch x := v.(type) {
	case ast.Null:
		return append(b, 'n')
	case ast.Boolean:
		if x {
			return append(b, 't')
		}
		return append(b, 'f')
	case ast.Number:
		return appendString(append(b, 'd'), string(x))
	case ast.String:
		return appendString(append(b, 's'), string(x))
	case *ast.Array:
		b = binary.AppendUvarint(append(b, 'a'), uint64(x.Len()))
		for i := range x.Len() {
			b = appendValue(b, x.Elem(i).Value)
		}
		return b
	case ast.Object:
		b = binary.AppendUvarint(append(b, 'o'), uint64(x.Len()))
		x.Foreach(func(k, v *ast.Term) {
			b = appendValue(appendValue(b, k.Value), v.Value)
		})
		return b
	case ast.Set:
		b = binary.AppendUvarint(append(b, 'e'), uint64(x.Len()))
		x.Foreach(func(t *ast.Term) { b = appendValue(b, t.Value) })
		return b
	}
	// Not in an input built from a request (refs, vars, calls): its text.
	return appendString(append(b, 'x'), v.String())
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
