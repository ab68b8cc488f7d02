// Package policy asks the Rego policy about one Check.
//
// An Engine loads the .rego and data files of policy.paths with OPA's loader,
// prepares the query once, and works out from the compiled policy which
// input paths it can read. For every Check it builds only those parts of an
// input in OPA-Envoy's shape plus the verified token, answers from its
// decision cache when the values at those paths were seen before, and else
// evaluates the query under a deadline. The answer, a boolean or an object,
// becomes a Decision. Files changed on disk are reloaded (which forgets every
// remembered decision); a reload that fails keeps the running policy. Every
// failure to decide is an error, which the caller turns into a deny: the
// policy never fails open.
package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// Options are an Engine's collaborators.
type Options struct {
	// Metrics counts loads and reloads; nil records nothing.
	Metrics *observe.Metrics
	// Logger receives reload results and evaluation errors; nil discards.
	Logger *slog.Logger
	// FS, when set, is where the policy paths are read from (paths relative
	// to it, "." for its root), and nothing is watched: used for the
	// policies bundled in the binary.
	FS fs.FS
	// Clock, when set, is the time remembered decisions are checked
	// against (tests); nil is time.Now.
	Clock func() time.Time
}

// Engine evaluates the policy. It is safe for concurrent use; a reload swaps
// the prepared query atomically, so a Check sees either the old or the new policy.
type Engine struct {
	cfg     config.Policy
	fsys    fs.FS
	metrics *observe.Metrics
	log     *slog.Logger
	clock   func() time.Time

	reloadMu sync.Mutex // one load at a time
	current  atomic.Pointer[prepared]

	// body bounds parsing request bodies; timeout bounds one evaluation.
	body    BodyLimits
	timeout time.Duration
}

// New loads and compiles the policy of cfg. The error names the file and the
// fault on one line.
func New(ctx context.Context, cfg config.Policy, opts Options) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, fsys: opts.FS, metrics: opts.Metrics, log: log, clock: opts.Clock, body: NewBodyLimits(cfg), timeout: cfg.Timeout}
	if e.timeout <= 0 {
		e.timeout = config.DefaultPolicyTimeout
	}
	p, err := e.load(ctx)
	e.metrics.PolicyReload(err)
	if err != nil {
		return nil, err
	}
	e.current.Store(p)
	log.Info("policy loaded", "files", p.files, "query", cfg.Query, "reads", p.reads.root.paths(), "decision_cache", p.cacheState())
	return e, nil
}

// Decide evaluates the query for req; tok is nil when the request had no
// token. An error means the request must be denied with 500.
func (e *Engine) Decide(ctx context.Context, req *request.Request, tok *verify.Token) (Decision, error) {
	return e.decide(ctx, e.current.Load(), req, tok)
}

// Eval evaluates the query for an input built by Input (tokenwise check
// uses it to show the input it evaluated).
//
// Every evaluation has a deadline: policy.timeout, or the Check's own when
// that comes first. Past it the evaluation is cancelled and is an error (a
// 500 deny), so a policy cannot run forever.
func (e *Engine) Eval(ctx context.Context, input ast.Value) (Decision, error) {
	return e.evalOn(ctx, e.current.Load(), input)
}

// Reload loads and compiles the policy now. On success the new policy
// replaces the old; on failure the old one stays, and the failure is logged,
// counted and returned.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	p, err := e.load(ctx)
	if err != nil {
		e.metrics.PolicyReload(err)
		e.log.Error("policy reload refused, the running policy stays", "error", err)
		return err
	}
	if old := e.current.Load(); old != nil && old.digest == p.digest {
		return nil // nothing that is loaded changed (an editor's temp file, a touch)
	}
	e.current.Store(p)
	e.metrics.PolicyReload(nil)
	e.log.Info("policy reloaded", "files", p.files, "reads", p.reads.root.paths(), "decision_cache", p.cacheState())
	return nil
}

// eval runs the prepared query and parses its value.
func (p *prepared) eval(ctx context.Context, input ast.Value) (Decision, error) {
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return Decision{}, fmt.Errorf("policy evaluation: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{}, errUndefined
	}
	if len(rs) > 1 {
		return Decision{}, errors.New("policy query has more than one result")
	}
	return parseDecision(rs[0].Expressions[0].Value)
}
