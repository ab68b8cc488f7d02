package policy

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown/print"

	"github.com/tokenwise/tokenwise/authz/observe"
)

// prepared is one compiled generation of the policy.
type prepared struct {
	query rego.PreparedEvalQuery
	// digest identifies what was loaded, so a reload that finds the same
	// content does not swap or count.
	digest [32]byte
	files  []string
	// queryUndefined is set when no rule or data document defines the
	// query; rules then lists the rules that are defined, for the message.
	queryUndefined bool
	rules          []string
	// reads is what the policy can read of the input, and whether its
	// decisions can be remembered; cache remembers them (nil: off).
	reads *reads
	cache *decisionCache
	// direct: the decision key can be encoded straight from the request.
	direct bool
}

// load reads and compiles the policy paths into a prepared query.
func (e *Engine) load(ctx context.Context) (*prepared, error) {
	result, err := e.loadFiles()
	if err != nil {
		return nil, err
	}
	if len(result.Modules) == 0 {
		return nil, fmt.Errorf("policy: no .rego files in %s", strings.Join(e.cfg.Paths, ", "))
	}
	var compiler *ast.Compiler
	store := inmem.NewFromObjectWithOpts(result.Documents,
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	opts := []func(*rego.Rego){
		rego.Query(e.cfg.Query),
		rego.Store(store),
		rego.StoreReadAST(true),
		rego.EnablePrintStatements(true),
		rego.PrintHook(printHook{e}),
		rego.CompilerHook(func(c *ast.Compiler) { compiler = c }),
	}
	files := make([]string, 0, len(result.Modules))
	for name, m := range result.Modules {
		opts = append(opts, rego.ParsedModule(m.Parsed))
		if loc := m.Parsed.Package.Location; loc != nil && loc.File != "" {
			name = loc.File // the path as given, for logs
		}
		files = append(files, name)
	}
	slices.Sort(files)
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, oneLine("policy", err)
	}
	digest, err := contentDigest(result)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p := &prepared{query: pq, digest: digest, files: files}
	if e.queryUndefined(result) {
		e.log.Warn("no rule or data defines the policy query; every Check will be denied", "query", e.cfg.Query)
		p.queryUndefined, p.rules = true, ruleRefs(result)
	}
	p.reads, p.cache = e.analyzeReads(compiler)
	p.direct = p.cache != nil && directOK(p.reads.root)
	return p, nil
}

// loadFiles runs OPA's loader: .rego modules and .json/.yaml data, the data
// placed under data by directory as `opa run` places it. Tests (_test.rego)
// and hidden names (editor files, Kubernetes ConfigMap ..data links) are skipped.
func (e *Engine) loadFiles() (*loader.Result, error) {
	l := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).WithProcessAnnotation(true)
	paths := e.cfg.Paths
	if e.fsys != nil {
		l = l.WithFS(e.fsys)
		paths = make([]string, len(e.cfg.Paths))
		for i, p := range e.cfg.Paths {
			paths[i] = path.Clean(p) // io/fs names have no trailing slash
		}
	}
	result, err := l.Filtered(paths, skipFile)
	if err != nil {
		return nil, oneLine("policy", err)
	}
	return result, nil
}

func skipFile(_ string, info fs.FileInfo, depth int) bool {
	if depth == 0 {
		return false // a path the user named is always read
	}
	name := info.Name()
	return strings.HasPrefix(name, ".") || (!info.IsDir() && strings.HasSuffix(name, "_test.rego"))
}

// oneLine flattens OPA's multi-error reports to the first fault, naming its
// file and line, and how many more there are.
func oneLine(prefix string, err error) error {
	var errs []error
	var le loader.Errors
	var ae ast.Errors
	switch {
	case errors.As(err, &le):
		errs = le
	case errors.As(err, &ae):
		for _, a := range ae {
			errs = append(errs, a)
		}
	default:
		errs = []error{err}
	}
	if len(errs) == 0 {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	msg := firstLine(errs[0])
	if len(errs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return fmt.Errorf("%s: %s", prefix, msg)
}

func firstLine(err error) string {
	var a *ast.Error
	if errors.As(err, &a) {
		msg := a.Code + ": " + a.Message
		if a.Location != nil && a.Location.File != "" {
			msg = fmt.Sprintf("%s:%d: %s", a.Location.File, a.Location.Row, msg)
		}
		return msg
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// contentDigest hashes the modules' source and the data documents.
func contentDigest(result *loader.Result) ([32]byte, error) {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(result.Modules)) {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(result.Modules[name].Raw))
		h.Write(result.Modules[name].Raw)
	}
	// encoding/json sorts map keys, so equal data hashes equally.
	data, err := json.Marshal(result.Documents)
	if err != nil {
		return [32]byte{}, err
	}
	h.Write(data)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// queryUndefined reports whether no rule or data document defines the
// query's document: every Check would then be denied as undefined.
func (e *Engine) queryUndefined(result *loader.Result) bool {
	ref, err := ast.ParseRef(e.cfg.Query)
	if err != nil || !ref.IsGround() {
		return false // a query that is not a plain reference: nothing to check
	}
	for _, m := range result.Modules {
		for _, r := range m.Parsed.Rules {
			path := m.Parsed.Package.Path.Extend(r.Head.Ref()).GroundPrefix()
			if path.HasPrefix(ref) || ref.HasPrefix(path) {
				return false
			}
		}
	}
	var doc any = result.Documents
	for _, t := range ref[1:] {
		obj, ok := doc.(map[string]any)
		key, isString := t.Value.(ast.String)
		if !ok || !isString {
			return false
		}
		if doc, ok = obj[string(key)]; !ok {
			return true
		}
	}
	return false
}

// printHook sends Rego print() output to the debug log.
type printHook struct{ e *Engine }

func (h printHook) Print(ctx print.Context, msg string) error {
	// A policy may print its input; the log must still hold no credential.
	h.e.log.Debug("policy print", "location", ctx.Location.String(), "message", observe.Scrub(msg))
	return nil
}
