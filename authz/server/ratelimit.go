package server

import (
	"context"
	"log/slog"
	"slices"

	"github.com/tokenwise/tokenwise/authz/answer"
	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/observe"
	"github.com/tokenwise/tokenwise/authz/policy"
	"github.com/tokenwise/tokenwise/authz/ratelimit"
)

// rateStage enforces the rate limits an allowed decision carries.
type rateStage struct {
	store   ratelimit.Store
	headers bool // rate_limits.headers: RateLimit headers on allowed answers
	shadow  bool // rate_limits.shadow: count and log, never refuse
	// failOpen lets limited requests through when the store fails (on_store_error: allow).
	failOpen bool
	metrics  *observe.Metrics
	logger   *slog.Logger
}

// rateNote is what the decision log says of a request's rate limits: the
// limit the answer reports and what it has left.
type rateNote struct {
	name      string
	remaining int64
}

// newRateStage opens the rate-limit store where use counts are kept.
func newRateStage(cfg *config.Config, m *observe.Metrics, logger *slog.Logger) (*rateStage, error) {
	store, err := ratelimit.New(cfg.UseLimits, cfg.RateLimits)
	if err != nil {
		return nil, err
	}
	return &rateStage{
		store: store, headers: cfg.RateLimits.HeadersEnabled(), shadow: cfg.RateLimits.Shadow,
		failOpen: cfg.UseLimits.OnStoreError == "allow", metrics: m, logger: logger,
	}, nil
}

func (s *rateStage) close() {
	if s != nil {
		_ = s.store.Close()
	}
}

// rateLimit takes this request from every limit d carries, all or none.
// stop is true when the request must be refused: 429 when a limit is
// exhausted, 503 when the store cannot be asked (unless on_store_error:
// allow). When it passes, the limit closest to exhaustion is announced to
// the client in d's response headers, and r.rate names it for the log.
func (a *Authorizer) rateLimit(ctx context.Context, d *policy.Decision) (r result, stop bool) {
	s := a.rates
	if len(d.RateLimits) == 0 || s == nil {
		return result{}, false
	}
	ctx, span := a.tracing.Start(ctx, "tokenwise.rate_limit")
	res, err := s.store.Take(ctx, d.RateLimits)
	span.End()
	if err != nil {
		return s.storeFailed(d, err)
	}
	s.count(res)
	if refused, ok := res.Refused(); ok {
		note := rateNote{refused.Limit.Name, refused.Remaining}
		if s.shadow {
			s.logger.Warn("rate limit exceeded; allowed in shadow mode", "rate_limit", refused.Limit.Name, "retry_after", refused.RetryAfter)
			return result{rate: note}, false
		}
		r = fail(answer.RateLimited(refused), "rate_limited", 429)
		r.rate = note
		return r, true
	}
	closest, _ := res.Closest()
	if s.headers && !s.shadow {
		// Clipped: a decision may share its slices with other Checks (a
		// remembered decision), so the headers go on a copy, never into
		// spare capacity of the shared array.
		d.ResponseHeadersToAdd = append(slices.Clip(d.ResponseHeadersToAdd), answer.RateLimitHeaders(closest)...)
	}
	return result{rate: rateNote{closest.Limit.Name, closest.Remaining}}, false
}

// storeFailed is a store fault: on_store_error decides, and shadow mode never refuses.
func (s *rateStage) storeFailed(d *policy.Decision, err error) (result, bool) {
	for _, l := range d.RateLimits {
		s.metrics.RateLimit(l.Name, "error")
	}
	if s.shadow || s.failOpen {
		s.logger.Warn("rate-limit store failed; allowing as configured", "error", err)
		return result{}, false
	}
	s.logger.Error("rate-limit store failed", "error", err)
	return fail(answer.Unavailable("the rate-limit store is unavailable"), "rate_limit_store_error", 503), true
}

// count records each limit's result. A request refused locally asked only
// the limit known to be exhausted, so only that one is counted.
func (s *rateStage) count(res ratelimit.Result) {
	for _, st := range res.Statuses {
		switch {
		case st.Allowed && res.Local:
		case st.Allowed:
			s.metrics.RateLimit(st.Limit.Name, "allowed")
		case s.shadow:
			s.metrics.RateLimit(st.Limit.Name, "shadow_limited")
		default:
			s.metrics.RateLimit(st.Limit.Name, "limited")
		}
	}
}

// withRate carries the rate-limit note of an earlier stage into r.
func withRate(r result, note rateNote) result {
	r.rate = note
	return r
}
