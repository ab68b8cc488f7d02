package observe

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxRateLimitNames is how many distinct limit names get a metrics label of
// their own; later names are counted under "other", so a policy that invents
// names (one per user, say) cannot blow up the series count.
const MaxRateLimitNames = 100

// OtherRateLimit is the label of limit names past MaxRateLimitNames.
const OtherRateLimit = "other"

// rateLimitNames hands out bounded labels for limit names.
type rateLimitNames struct {
	mu    sync.RWMutex
	names map[string]bool
}

// label is name while fewer than MaxRateLimitNames names were seen, or when
// name was among them; else OtherRateLimit.
func (n *rateLimitNames) label(name string) string {
	n.mu.RLock()
	known, full := n.names[name], len(n.names) >= MaxRateLimitNames
	n.mu.RUnlock()
	if known {
		return name
	}
	if full {
		return OtherRateLimit
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.names) >= MaxRateLimitNames && !n.names[name] {
		return OtherRateLimit
	}
	n.names[name] = true
	return name
}

func newRateLimitDecisions() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwise_rate_limit_decisions_total",
		Help: "Rate limits checked, by limit name (the first 100 names; then \"other\") and result (allowed, limited, shadow_limited, error).",
	}, []string{"limit", "result"})
}

// RateLimit counts one limit's result for one request: allowed, limited,
// shadow_limited (refused, let through by shadow mode) or error.
func (m *Metrics) RateLimit(name, result string) {
	if m == nil {
		return
	}
	m.rateLimits.WithLabelValues(m.rateLimitNames.label(name), result).Inc()
}
