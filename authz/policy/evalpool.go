package policy

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Rego evaluation recurses deeply. Run on the goroutine gRPC starts for each
// Check, whose stack starts small, it grows that stack by copying, several
// times per Check: in the reuse-nocache profile stack growth cost as much as
// the evaluation itself. Evaluations therefore run on long-lived workers
// whose stacks have already grown. When every worker is busy the Check
// evaluates on its own goroutine, so the pool never queues a Check.

// evalWorkers is how many evaluations can run on grown stacks at once.
var evalWorkers = max(16, 8*runtime.GOMAXPROCS(0))

type evalJob struct {
	ctx   context.Context
	p     *prepared
	input ast.Value
	d     Decision
	err   error
	done  chan struct{}
}

var (
	evalJobs     chan *evalJob
	evalPoolOnce sync.Once
	evalJobPool  = sync.Pool{New: func() any { return &evalJob{done: make(chan struct{}, 1)} }}
)

func startEvalPool() {
	evalJobs = make(chan *evalJob)
	for range evalWorkers {
		go evalWorker()
	}
}

func evalWorker() {
	for j := range evalJobs {
		j.d, j.err = safeEval(j.ctx, j.p, j.input)
		j.done <- struct{}{}
	}
}

// safeEval is p.eval; a panic in it is an error (a deny), never a crash of
// the worker, which has no Check to recover it.
func safeEval(ctx context.Context, p *prepared, input ast.Value) (d Decision, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = Decision{}, fmt.Errorf("policy evaluation panicked: %v", r)
		}
	}()
	return p.eval(ctx, input)
}

// evalPooled evaluates p for input on an idle worker, or here when none is idle.
func evalPooled(ctx context.Context, p *prepared, input ast.Value) (Decision, error) {
	evalPoolOnce.Do(startEvalPool)
	j := evalJobPool.Get().(*evalJob)
	j.ctx, j.p, j.input = ctx, p, input
	select {
	case evalJobs <- j:
		<-j.done
	default:
		j.d, j.err = p.eval(ctx, input)
	}
	d, err := j.d, j.err
	*j = evalJob{done: j.done}
	evalJobPool.Put(j)
	return d, err
}
