// Package observe holds what operators see of tokenwise at work: Prometheus
// metrics (including the Redis nodes' and rate limits'), OpenTelemetry
// spans of each Check, and the JSON decision log with its redaction of
// secrets. It imports no other tokenwise package, so
// every stage of the Check pipeline can report through it.
package observe

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are tokenwise's Prometheus series. A nil *Metrics records nothing,
// so tests and tools can pass nil.
type Metrics struct {
	registry      *prometheus.Registry
	decisions     *prometheus.CounterVec
	checkLatency  prometheus.Histogram
	jwksRefreshes *prometheus.CounterVec
	jwksFailures  *prometheus.CounterVec
	storeLatency  *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	policyReloads *prometheus.CounterVec
	panics        prometheus.Counter
	// frontends counts Checks by the front end that answered them, beside
	// decisions, whose labels stay as dashboards know them.
	frontends *prometheus.CounterVec
	// introspection* are RFC 7662 requests and the answer cache (issue 14).
	introspections       *prometheus.CounterVec
	introspectionLatency *prometheus.HistogramVec
	introspectionCache   *prometheus.CounterVec
	// rateLimits counts rate-limit results under bounded limit labels.
	rateLimits     *prometheus.CounterVec
	rateLimitNames rateLimitNames
}

// NewMetrics creates the series on a fresh registry with Go and process collectors.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		registry: r,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenwise_decisions_total", Help: "Checks answered, by outcome (allow, deny) and reason.",
		}, []string{"outcome", "reason"}),
		checkLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tokenwise_check_duration_seconds", Help: "Time to answer one Check.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		jwksRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenwise_jwks_refreshes_total", Help: "JWKS fetches that succeeded, by issuer.",
		}, []string{"issuer"}),
		jwksFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenwise_jwks_refresh_failures_total", Help: "JWKS fetches that failed, by issuer.",
		}, []string{"issuer"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tokenwise_use_limit_store_duration_seconds", Help: "Use-limit store call latency, by store.",
			Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"store"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenwise_use_limit_store_errors_total", Help: "Use-limit store calls that failed, by store.",
		}, []string{"store"}),
		policyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenwise_policy_reloads_total", Help: "Policy reloads, by result (success, failure).",
		}, []string{"result"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokenwise_check_panics_total", Help: "Checks that panicked and were denied.",
		}),
		frontends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenwise_frontend_decisions_total", Help: "Checks answered, by front end (grpc, http) and outcome (allow, deny).",
		}, []string{"frontend", "outcome"}),
	}
	r.MustRegister(m.frontends)
	r.MustRegister(m.decisions, m.checkLatency, m.jwksRefreshes, m.jwksFailures, m.storeLatency, m.storeErrors, m.policyReloads, m.panics)
	m.registerIntrospection()
	m.rateLimits, m.rateLimitNames.names = newRateLimitDecisions(), map[string]bool{}
	r.MustRegister(m.rateLimits)
	return m
}

// registerIntrospection creates and registers the introspection series.
func (m *Metrics) registerIntrospection() {
	m.introspections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwise_introspection_requests_total", Help: "Token introspection requests, by issuer and result (active, inactive, failure).",
	}, []string{"issuer", "result"})
	m.introspectionLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tokenwise_introspection_duration_seconds", Help: "Token introspection request latency, by issuer.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"issuer"})
	m.introspectionCache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwise_introspection_cache_lookups_total", Help: "Introspection answer cache lookups, by issuer and result (hit, miss).",
	}, []string{"issuer", "result"})
	m.registry.MustRegister(m.introspections, m.introspectionLatency, m.introspectionCache)
}

// Introspection records one introspection request of issuer: its result
// (active, inactive or failure) and latency.
func (m *Metrics) Introspection(issuer, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.introspections.WithLabelValues(issuer, result).Inc()
	m.introspectionLatency.WithLabelValues(issuer).Observe(took.Seconds())
}

// IntrospectionCacheCounter returns the function that counts one lookup in
// issuer's introspection answer cache (hit or miss). Its series are
// resolved once, so a lookup costs an atomic add; nil Metrics count nothing.
func (m *Metrics) IntrospectionCacheCounter(issuer string) func(hit bool) {
	if m == nil {
		return func(bool) {}
	}
	hits := m.introspectionCache.WithLabelValues(issuer, "hit")
	misses := m.introspectionCache.WithLabelValues(issuer, "miss")
	return func(hit bool) {
		if hit {
			hits.Inc()
		} else {
			misses.Inc()
		}
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Decision counts one answered Check and its latency.
func (m *Metrics) Decision(outcome, reason string, took time.Duration) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(outcome, reason).Inc()
	m.checkLatency.Observe(took.Seconds())
}

// JWKSRefresh counts one JWKS fetch of issuer; err is nil on success.
func (m *Metrics) JWKSRefresh(issuer string, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.jwksFailures.WithLabelValues(issuer).Inc()
		return
	}
	m.jwksRefreshes.WithLabelValues(issuer).Inc()
}

// StoreCall records one use-limit store call's latency and whether it failed.
func (m *Metrics) StoreCall(store string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.storeLatency.WithLabelValues(store).Observe(took.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(store).Inc()
	}
}

// PolicyReload counts one policy (re)load; err is nil on success.
func (m *Metrics) PolicyReload(err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.policyReloads.WithLabelValues(result).Inc()
}

// Panic counts one Check that panicked.
func (m *Metrics) Panic() {
	if m == nil {
		return
	}
	m.panics.Inc()
}

// FrontendDecision counts one answered Check by the front end that asked.
func (m *Metrics) FrontendDecision(frontend, outcome string) {
	if m == nil {
		return
	}
	m.frontends.WithLabelValues(frontend, outcome).Inc()
}
