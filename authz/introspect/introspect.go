// Package introspect asks an issuer's RFC 7662 token introspection endpoint
// whether an opaque token is active, and remembers the answer safely.
//
// The client POSTs the token (and token_type_hint=access_token) with the
// configured client authentication, to an https endpoint or plain http on
// loopback only, redirects included. Answers are cached by the SHA-256 of the
// token, never by the token itself, in a cache bounded in entries: an active
// answer for at most cache_ttl and never past its exp, an inactive one for
// negative_cache_ttl. Failures (endpoint down, slow past the timeout, non-2xx,
// not a JSON answer) are never cached and never an answer: they are errors
// that wrap ErrUnavailable, so the caller fails closed with a retryable 503.
// Concurrent calls for one token share one request, also when its cached
// answer has just expired.
//
// What an answer means for the token (iss, aud, exp, nbf, ...) is decided by
// the caller (authz/verify); this package only fetches and caches.
package introspect

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
)

// ErrUnavailable is wrapped by every error Introspect returns: the endpoint
// could not give an answer, so the token may well be good.
var ErrUnavailable = errors.New("token introspection unavailable")

// DefaultCacheSize is how many answers a Client remembers unless told otherwise.
const DefaultCacheSize = 10000

// Options are the Client's collaborators; every field may be left zero.
type Options struct {
	// Name is the issuer's configured name, for metrics and logs.
	Name string
	// HTTPClient sends the requests; nil uses one with connect, TLS and
	// header timeouts. Its redirect policy is always replaced by the
	// introspection URL rule.
	HTTPClient *http.Client
	// Endpoint finds the URL when the configuration leaves it out (OpenID
	// Connect discovery's introspection_endpoint). Its answer is checked
	// against the same URL rule as a configured one.
	Endpoint func(ctx context.Context) (string, error)
	// CacheSize is how many answers to remember (0: DefaultCacheSize;
	// negative: none, every call asks the endpoint).
	CacheSize int
	// Metrics counts requests, their latency and cache lookups; nil records nothing.
	Metrics *observe.Metrics
	// Logger receives request failures (never a token); nil discards them.
	Logger *slog.Logger
	// Now is the clock (nil: time.Now); tests move it to expire answers.
	Now func() time.Time
}

// Client introspects tokens at one endpoint. It is safe for concurrent use.
type Client struct {
	cfg      config.Introspection
	name     string
	http     *http.Client
	endpoint func(ctx context.Context) (string, error)
	cache    *cache
	flight   singleflight.Group
	metrics  *observe.Metrics
	cacheHit func(hit bool) // counts a cache lookup, its series resolved once
	log      *slog.Logger
	now      func() time.Time
}

// New makes a Client for cfg. With cfg.URL empty, opts.Endpoint must be set.
func New(cfg config.Introspection, opts Options) (*Client, error) {
	if cfg.URL != "" {
		if err := config.CheckIntrospectionURL(cfg.URL); err != nil {
			return nil, fmt.Errorf("introspection url %q: %w", cfg.URL, err)
		}
	} else if opts.Endpoint == nil {
		return nil, errors.New("introspection: no url and no discovery to find one")
	}
	cfg = withDefaults(cfg)
	c := &Client{
		cfg: cfg, name: opts.Name, http: httpClient(opts.HTTPClient), endpoint: opts.Endpoint,
		metrics: opts.Metrics, cacheHit: opts.Metrics.IntrospectionCacheCounter(opts.Name), log: opts.Logger, now: opts.Now,
	}
	switch {
	case opts.CacheSize == 0:
		c.cache = newCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		c.cache = newCache(opts.CacheSize)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// withDefaults fills what config.Load would have, for callers that build
// the configuration by hand.
func withDefaults(cfg config.Introspection) config.Introspection {
	if cfg.Auth == "" {
		cfg.Auth = config.AuthClientSecretBasic
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 2 * time.Minute
	}
	if cfg.NegativeCacheTTL <= 0 {
		cfg.NegativeCacheTTL = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	return cfg
}

// Answer is an introspection endpoint's answer about one token. It is shared
// by every Check of that token while it is cached: treat it as read-only.
type Answer struct {
	// Active is the answer's active member.
	Active bool
	// Claims is the answer without active. JSON numbers are json.Number.
	Claims map[string]any
	// Expiry is exp (zero when absent or not a number).
	Expiry time.Time
	// TokenHash is the SHA-256 of the token the answer is about.
	TokenHash [32]byte

	memo atomic.Pointer[memo]
}

type memo struct{ value any }

// Derived returns what build computes from this answer, computed once per
// answer when build says the value may be kept (keep false: computed again
// next time, e.g. for a verdict that time may change).
func (a *Answer) Derived(build func() (value any, keep bool)) any {
	if m := a.memo.Load(); m != nil {
		return m.value
	}
	v, keep := build()
	if keep {
		a.memo.CompareAndSwap(nil, &memo{value: v})
	}
	return v
}

// Introspect returns the endpoint's answer about token, from the cache when
// it may be. ctx bounds only this caller's wait: the shared request runs to
// its own timeout, so one impatient Check cannot fail the others waiting on
// it. Every error wraps ErrUnavailable and never contains the token.
func (c *Client) Introspect(ctx context.Context, token string) (*Answer, error) {
	hash := sha256.Sum256([]byte(token))
	if a := c.cache.get(&hash, c.now()); a != nil {
		c.cacheHit(true)
		return a, nil
	}
	c.cacheHit(false)
	return c.miss(ctx, token, hash)
}

// miss asks the endpoint, sharing the request with concurrent callers for
// the same token. It is apart from Introspect so that the cache hit path
// does not pay for the closure's captured values.
func (c *Client) miss(ctx context.Context, token string, hash [32]byte) (*Answer, error) {
	ch := c.flight.DoChan(string(hash[:]), func() (any, error) {
		// A flight that ended just before this one started may have
		// cached the answer: without this look, a burst of Checks at
		// expiry could still send two requests.
		if a := c.cache.get(&hash, c.now()); a != nil {
			return a, nil
		}
		a, err := c.fetch(context.WithoutCancel(ctx), token, hash)
		if err != nil {
			return nil, err // never cached
		}
		c.remember(a)
		return a, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, context.Cause(ctx))
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Answer), nil
	}
}

// remember caches a: an active answer until cache_ttl or its exp, whichever
// comes first; an inactive one for negative_cache_ttl.
func (c *Client) remember(a *Answer) {
	now := c.now()
	until := now.Add(c.cfg.NegativeCacheTTL)
	if a.Active {
		until = now.Add(c.cfg.CacheTTL)
		if _, present := a.Claims["exp"]; present && a.Expiry.IsZero() {
			return // an exp that is not a time: no bound known, so not kept
		}
		if !a.Expiry.IsZero() && a.Expiry.Before(until) {
			until = a.Expiry
		}
	}
	if until.After(now) {
		c.cache.put(a, until, now)
	}
}

// fetch sends one request under the configured timeout and records it.
func (c *Client) fetch(ctx context.Context, token string, hash [32]byte) (*Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	a, err := c.post(ctx, token)
	result := "failure"
	switch {
	case err != nil:
		c.log.Warn("token introspection failed", "issuer", c.name, "error", err)
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	case a.Active:
		result = "active"
	default:
		result = "inactive"
	}
	c.metrics.Introspection(c.name, result, time.Since(start))
	if err != nil {
		return nil, err
	}
	a.TokenHash = hash
	return a, nil
}
