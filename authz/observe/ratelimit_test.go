package observe

import (
	"fmt"
	"testing"
)

// rateLimitSeries reads tokenwise_rate_limit_decisions_total as label pairs → value.
func rateLimitSeries(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "tokenwise_rate_limit_decisions_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["limit"]+"/"+labels["result"]] = s.GetCounter().GetValue()
		}
	}
	return out
}

func TestRateLimitLabelsAreBounded(t *testing.T) {
	m := NewMetrics()
	for i := range 3 * MaxRateLimitNames {
		m.RateLimit(fmt.Sprint("limit-", i), "allowed")
	}
	m.RateLimit("limit-0", "limited") // a known name keeps its label
	series := rateLimitSeries(t, m)
	if len(series) != MaxRateLimitNames+2 {
		t.Errorf("%d series; want %d names, other, and limit-0's limited", len(series), MaxRateLimitNames+2)
	}
	if v := series[OtherRateLimit+"/allowed"]; v != 2*MaxRateLimitNames {
		t.Errorf("other = %v, want %d", v, 2*MaxRateLimitNames)
	}
	if series["limit-0/limited"] != 1 {
		t.Errorf("limit-0/limited = %v", series["limit-0/limited"])
	}
	var nilMetrics *Metrics
	nilMetrics.RateLimit("x", "allowed") // must not panic
}
