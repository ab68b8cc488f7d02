package policy

import (
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// pathNode is one node of the set of input paths a policy can read: a tree
// keyed by object keys. A node marked all is read whole; otherwise only its
// children are. The root of a policy that can read the input as a whole is
// allNode.
type pathNode struct {
	all      bool
	children map[string]*pathNode
	// term is the key of this node in its parent, made once.
	term *ast.Term
	// sorted are the children's keys in order (set by finish).
	sorted []string
}

// allNode stands for "everything below here": every child of it is itself.
var allNode = &pathNode{all: true}

// child is the node for key below n: nil when the policy cannot read it.
func (n *pathNode) child(key string) *pathNode {
	switch {
	case n == nil:
		return nil
	case n.all:
		return allNode
	}
	return n.children[key]
}

// has reports whether the policy can read key below n.
func (n *pathNode) has(key string) bool { return n.child(key) != nil }

// add marks path as read; a path ending here makes the whole subtree read.
func (n *pathNode) add(path []string) {
	for _, key := range path {
		if n.all {
			return
		}
		c := n.children[key]
		if c == nil {
			c = &pathNode{term: ast.StringTerm(key)}
			if n.children == nil {
				n.children = map[string]*pathNode{}
			}
			n.children[key] = c
		}
		n = c
	}
	n.all, n.children = true, nil
}

// paths lists the read paths, dotted, sorted; "input" for the whole input.
func (n *pathNode) paths() []string {
	var out []string
	for _, p := range n.list() {
		out = append(out, strings.Join(append([]string{"input"}, p...), "."))
	}
	slices.Sort(out)
	return out
}

// list is every read path, each a list of keys below input; the whole
// input is the one empty path.
func (n *pathNode) list() [][]string {
	var out [][]string
	var walk func(prefix []string, n *pathNode)
	walk = func(prefix []string, n *pathNode) {
		if n.all {
			out = append(out, slices.Clone(prefix))
			return
		}
		for key, c := range n.children {
			walk(append(prefix, key), c)
		}
	}
	walk(nil, n)
	return out
}

// reads is what static analysis of a compiled policy found.
type reads struct {
	// root is the tree of input paths the policy can read.
	root *pathNode
	// nondeterministic names a non-deterministic built-in the policy calls
	// ("" when none): its decisions cannot be remembered.
	nondeterministic string
}

// whole reports whether the policy can read the input as a whole.
func (r *reads) whole() bool { return r.root.all }

// cacheable reports whether the policy's decision depends on nothing but
// the input paths it reads (and its own modules and data).
func (r *reads) cacheable() bool { return !r.whole() && r.nondeterministic == "" }

// analyze walks the compiled modules and the query for the input paths they
// can read: the constant prefix of every ref rooted at input (a ref with a
// variable, or a non-string key, reads the prefix before it). input used as
// a value (walk(input), json.marshal(input), object.get(input, …), passed to
// a function) and any `with input…` override read the whole input. It also
// notes the first non-deterministic built-in called, as OPA marks them.
func analyze(modules map[string]*ast.Module, query ast.Body) *reads {
	r := &reads{root: &pathNode{}}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		for _, rule := range modules[name].Rules { // not imports: the compiler resolved them into the rules
			r.walk(rule)
		}
	}
	if query != nil {
		r.walk(query)
	}
	r.root.finish()
	return r
}

// walk records what x reads.
func (r *reads) walk(x any) {
	ast.WalkWiths(x, func(w *ast.With) bool {
		if ref, ok := w.Target.Value.(ast.Ref); ok && ref.HasPrefix(ast.InputRootRef) {
			r.root.add(nil) // the body sees an input of the policy's making
		}
		return false
	})
	ast.WalkExprs(x, func(e *ast.Expr) bool {
		if e.IsCall() {
			r.call(e.Operator())
		}
		return false
	})
	ast.WalkTerms(x, func(t *ast.Term) bool {
		switch v := t.Value.(type) {
		case ast.Ref:
			r.ref(v)
			for _, e := range v[1:] { // refs nested in the key positions
				r.walk(e)
			}
			return true
		case ast.Var:
			if v.Equal(ast.InputRootDocument.Value) { // input as a value, outside a ref
				r.root.add(nil)
			}
		case ast.Call:
			if len(v) > 0 {
				if op, ok := v[0].Value.(ast.Ref); ok {
					r.call(op)
				}
			}
		}
		return false
	})
}

// ref records a ref rooted at input: its constant string prefix.
func (r *reads) ref(ref ast.Ref) {
	if len(ref) == 0 || !ref[0].Equal(ast.InputRootDocument) {
		return
	}
	var path []string
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		path = append(path, string(s))
	}
	r.root.add(path)
}

// call notes a call of a non-deterministic built-in.
func (r *reads) call(op ast.Ref) {
	if op == nil || r.nondeterministic != "" {
		return
	}
	name := op.String()
	if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
		r.nondeterministic = name
	}
}
