package uselimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// errNotConnected is what every call returns while a cluster or sentinel
// client has not yet read its topology.
var errNotConnected = errors.New("redis: not connected yet: no seed node or sentinel has answered")

// noSlot is the key slot rueidis gives commands built by a non-cluster
// builder (rueidis's internal cmds.NoSlot). A cluster client cannot route
// such a command.
const noSlot = 1 << 15

// connectRetry is the pause between attempts to read the topology.
const connectRetry = time.Second

// pendingClient stands in for a cluster or sentinel client whose topology
// could not be read at start, so tokenwise starts without its Redis, as it
// does in standalone mode: every call fails with errNotConnected until a
// background attempt succeeds, then calls go to the real client. rueidis
// can only build a cluster or sentinel client by connecting.
type pendingClient struct {
	// offline answers every call before the real client exists: a single
	// client whose every dial fails with errNotConnected, which also
	// provides B() and the dedicated and streaming forms.
	offline rueidis.Client
	live    atomic.Pointer[rueidis.Client]
	mode    rueidis.ClientMode
	stop    chan struct{}
	// why is the last attempt's error, which calls return meanwhile.
	why atomic.Pointer[error]

	mu     sync.Mutex // orders Close against the real client's arrival
	closed bool
}

var _ rueidis.Client = (*pendingClient)(nil)

// newPendingClient returns a client that keeps trying to build the real
// one from opt every connectRetry until it succeeds or is closed.
// first is the error of the attempt made at start.
func newPendingClient(opt rueidis.ClientOption, mode rueidis.ClientMode, first error) (*pendingClient, error) {
	p := &pendingClient{mode: mode, stop: make(chan struct{})}
	p.why.Store(&first)
	offline, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{"offline:0"},
		ForceSingleClient: true,
		DisableCache:      true,
		DisableRetry:      true,
		DialCtxFn: func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) {
			return nil, p.err()
		},
	})
	if offline == nil { // its failed first dial is expected: only no client is an error
		return nil, fmt.Errorf("redis: %w", err)
	}
	p.offline = offline
	go p.connect(opt)
	return p, nil
}

// err is errNotConnected with the last attempt's cause.
func (p *pendingClient) err() error {
	return fmt.Errorf("%w (%s: %v)", errNotConnected, p.mode, *p.why.Load())
}

// connect builds the real client, retrying until it succeeds or p closes.
func (p *pendingClient) connect(opt rueidis.ClientOption) {
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(connectRetry):
		}
		// rueidis shuffles InitAddress in place, and a client that failed
		// may still be reading the slice it was given: each try gets its own.
		try := opt
		try.InitAddress = slices.Clone(opt.InitAddress)
		c, err := rueidis.NewClient(try)
		if err != nil {
			p.why.Store(&err)
			continue
		}
		p.mu.Lock()
		if p.closed {
			c.Close() // closed meanwhile: nobody else would close c
		} else {
			p.live.Store(&c)
		}
		p.mu.Unlock()
		return
	}
}

// client is the real client once built, else the offline one.
func (p *pendingClient) client() rueidis.Client {
	if c := p.live.Load(); c != nil {
		return *c
	}
	return p.offline
}

// stale reports a command built before the real cluster client existed: its
// key slot was never computed, so it cannot be routed.
func (p *pendingClient) stale(cmds ...rueidis.Completed) bool {
	if p.mode != rueidis.ClientModeCluster {
		return false
	}
	for i := range cmds {
		if cmds[i].Slot() == noSlot {
			return true
		}
	}
	return false
}

// B returns the builder of the client in use.
func (p *pendingClient) B() rueidis.Builder { return p.client().B() }

// Do runs cmd on the real client, or fails while there is none.
func (p *pendingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if p.stale(cmd) {
		return rueidis.NewErrorResult(p.err())
	}
	return p.client().Do(ctx, cmd)
}

// DoMulti runs multi on the real client, or fails while there is none.
func (p *pendingClient) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	if p.stale(multi...) {
		out := make([]rueidis.RedisResult, len(multi))
		for i := range out {
			out[i] = rueidis.NewErrorResult(p.err())
		}
		return out
	}
	return p.client().DoMulti(ctx, multi...)
}

// Receive subscribes on the real client, or fails while there is none.
func (p *pendingClient) Receive(ctx context.Context, subscribe rueidis.Completed, fn func(rueidis.PubSubMessage)) error {
	if p.stale(subscribe) {
		return p.err()
	}
	return p.client().Receive(ctx, subscribe, fn)
}

// DoCache forwards to the client in use.
func (p *pendingClient) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	return p.client().DoCache(ctx, cmd, ttl)
}

// DoMultiCache forwards to the client in use.
func (p *pendingClient) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	return p.client().DoMultiCache(ctx, multi...)
}

// DoStream forwards to the client in use.
func (p *pendingClient) DoStream(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResultStream {
	if p.stale(cmd) {
		return rueidis.NewErrorResultStream(p.err())
	}
	return p.client().DoStream(ctx, cmd)
}

// DoMultiStream forwards to the client in use.
func (p *pendingClient) DoMultiStream(ctx context.Context, multi ...rueidis.Completed) rueidis.MultiRedisResultStream {
	if p.stale(multi...) {
		return rueidis.NewErrorResultStream(p.err())
	}
	return p.client().DoMultiStream(ctx, multi...)
}

// Dedicated forwards to the client in use.
func (p *pendingClient) Dedicated(fn func(rueidis.DedicatedClient) error) error {
	return p.client().Dedicated(fn)
}

// Dedicate forwards to the client in use.
func (p *pendingClient) Dedicate() (rueidis.DedicatedClient, func()) { return p.client().Dedicate() }

// Nodes are the real client's nodes (none while there is no real client).
func (p *pendingClient) Nodes() map[string]rueidis.Client {
	if c := p.live.Load(); c != nil {
		return (*c).Nodes()
	}
	return map[string]rueidis.Client{}
}

// Mode is the configured mode.
func (p *pendingClient) Mode() rueidis.ClientMode { return p.mode }

// Close stops connecting and closes the client in use.
func (p *pendingClient) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	close(p.stop)
	if c := p.live.Load(); c != nil {
		(*c).Close()
	}
	p.offline.Close()
}
