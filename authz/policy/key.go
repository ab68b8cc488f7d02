package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// keyEncoder encodes one input into a key. Encoders are recycled: the
// buffer keeps its capacity, and the callbacks handed to OPA's iterators are
// bound once, so encoding allocates nothing.
type keyEncoder struct {
	b []byte
	// failed: the direct key met what it cannot encode.
	failed bool
	pairFn func(k, v *ast.Term)
	elemFn func(t *ast.Term)
}

var keyEncoders = sync.Pool{New: func() any {
	e := &keyEncoder{b: make([]byte, 0, 1024)}
	e.pairFn = e.pair
	e.elemFn = e.elem
	return e
}}

// decisionKey is the cache key of an input built for the paths a policy
// reads: SHA-256 over the policy's digest (its modules and data) and an
// unambiguous encoding of the input. Such an input holds exactly the values
// at the paths the policy reads, so equal keys mean equal values there, and
// a deterministic policy decides them equally.
func decisionKey(digest [32]byte, input ast.Value) cacheKey {
	e := keyEncoders.Get().(*keyEncoder)
	e.b = append(e.b[:0], digest[:]...)
	e.value(input)
	k := cacheKey(sha256.Sum256(e.b))
	keyEncoders.Put(e)
	return k
}

// value appends an encoding of v from which v can be read back: every value
// starts with its kind, strings and collections with their length; object
// keys and set members come in their sorted order, so equal values encode
// equally.
func (e *keyEncoder) value(v ast.Value) {
	switch x := v.(type) {
	case ast.Null:
		e.b = append(e.b, 'n')
	case ast.Boolean:
		if x {
			e.b = append(e.b, 't')
		} else {
			e.b = append(e.b, 'f')
		}
	case ast.Number:
		e.str('d', string(x))
	case ast.String:
		e.str('s', string(x))
	case *ast.Array:
		e.size('a', x.Len())
		for i := range x.Len() {
			e.value(x.Elem(i).Value)
		}
	case ast.Object:
		e.size('o', x.Len())
		x.Foreach(e.pairFn)
	case ast.Set:
		e.size('e', x.Len())
		x.Foreach(e.elemFn)
	default:
		// Not in an input built from a request (refs, vars, calls): its text.
		e.str('x', v.String())
	}
}

func (e *keyEncoder) pair(k, v *ast.Term) {
	e.value(k.Value)
	e.value(v.Value)
}

func (e *keyEncoder) elem(t *ast.Term) { e.value(t.Value) }

func (e *keyEncoder) size(kind byte, n int) {
	e.b = binary.AppendUvarint(append(e.b, kind), uint64(n))
}

func (e *keyEncoder) str(kind byte, s string) {
	e.size(kind, len(s))
	e.b = append(e.b, s...)
}
