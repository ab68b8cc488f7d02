package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tokenwise/tokenwise/authz/request"
	"github.com/tokenwise/tokenwise/authz/verify"
)

// decide is Decide on one generation of the policy, p: it keys the values
// at the paths p can read (straight from the request when it can), answers
// from p's decision cache when it holds the decision for them, and
// otherwise builds only the input p can read and evaluates it. The same p builds,
// keys and evaluates, so a reload in between cannot mix two policies.
func (e *Engine) decide(ctx context.Context, p *prepared, req *request.Request, tok *verify.Token) (Decision, error) {
	if p.cache == nil {
		input, err := e.input(ctx, p, req, tok)
		if err != nil {
			return Decision{}, err
		}
		return e.evalOn(ctx, p, input)
	}
	var input ast.Value
	key, ok := p.directKey(req, tok)
	if !ok {
		var err error
		if input, err = e.input(ctx, p, req, tok); err != nil {
			return Decision{}, err
		}
		key = decisionKey(p.digest, input)
	}
	now := e.now().UnixNano()
	if d, ok := p.cache.get(key, now); ok {
		return d, nil
	}
	if input == nil {
		var err error
		if input, err = e.input(ctx, p, req, tok); err != nil {
			return Decision{}, err
		}
	}
	d, err := e.evalOn(ctx, p, input)
	if err == nil { // failures are never remembered: each is logged and may pass
		p.cache.put(key, d, tokenDeadline(tok), now)
	}
	return d, err
}

// input builds the input p can read.
func (e *Engine) input(ctx context.Context, p *prepared, req *request.Request, tok *verify.Token) (ast.Value, error) {
	input, err := build(ctx, req, tok, e.body, p.reads.root)
	if err != nil {
		e.log.Warn("policy input", "error", err)
		return nil, fmt.Errorf("policy input: %w", err)
	}
	return input, nil
}

// evalOn evaluates p for input, logging a failure. Every evaluation has a
// deadline: policy.timeout, or the Check's own when that comes first. Past
// it the evaluation is cancelled and is an error (a 500 deny), so a policy
// cannot run forever.
func (e *Engine) evalOn(ctx context.Context, p *prepared, input ast.Value) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	d, err := evalPooled(ctx, p, input)
	if err != nil {
		e.log.Error("policy evaluation failed", "query", e.cfg.Query, "error", err)
	}
	return d, err
}

// tokenDeadline is when a decision made for tok stops being good: the
// token's exp (0: no token, or no exp).
func tokenDeadline(tok *verify.Token) int64 {
	if tok == nil || tok.Expiry.IsZero() {
		return 0
	}
	return tok.Expiry.UnixNano()
}

// analyzeReads works out what the compiled policy can read, and makes its
// decision cache when its decisions can be remembered.
func (e *Engine) analyzeReads(c *ast.Compiler) (*reads, *decisionCache) {
	var modules map[string]*ast.Module
	if c != nil {
		modules = c.Modules
	}
	query, err := ast.ParseBody(e.cfg.Query)
	if err != nil {
		query = nil // PrepareForEval accepted it; a plain ref reads no input
	}
	r := analyze(modules, query)
	if c == nil {
		r.root = allNode // nothing to analyze: assume everything
	}
	if !r.cacheable() {
		return r, nil
	}
	return r, newDecisionCache(e.cfg.DecisionCacheEntries())
}

// now is the engine's clock.
func (e *Engine) now() time.Time {
	if e.clock != nil {
		return e.clock()
	}
	return time.Now()
}

// cacheState says, for the load log line, whether decisions are remembered and why not.
func (p *prepared) cacheState() string {
	switch {
	case p.cache != nil:
		return "on"
	case p.reads.whole():
		return "off: the policy can read the input as a whole"
	case p.reads.nondeterministic != "":
		return "off: the policy calls " + p.reads.nondeterministic
	}
	return "off: policy.decision_cache_size is 0"
}
