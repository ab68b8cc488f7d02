package examples

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/tokenwise/tokenwise/authz/observe"
)

// observabilityFiles are checked by TestGrafanaDashboard and TestAlertingRules.
var observabilityFiles = []string{"observability/grafana-dashboard.json", "observability/alerts.yaml"}

// scrapeLabels are added by Prometheus when it scrapes, not by tokenwise.
var scrapeLabels = []string{"__name__", "job", "instance"}

// exportedSeries starts tokenwise's real metrics registry, records one of
// everything it counts, scrapes /metrics as Prometheus would, and returns
// every series name with its label names.
func exportedSeries(t *testing.T) map[string][]string {
	t.Helper()
	m := observe.NewMetrics()
	m.Decision("deny", "already_used", time.Millisecond)
	m.JWKSRefresh("corp", nil)
	m.JWKSRefresh("corp", errors.New("down"))
	m.StoreCall("redis", time.Millisecond, errors.New("down"))
	m.RateLimit("per-user", "limited")
	m.PolicyReload(nil)
	m.Panic()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	for name, f := range families {
		var labels []string
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			series[name+"_bucket"] = append(slices.Clone(labels), "le")
			series[name+"_sum"], series[name+"_count"] = labels, labels
		case dto.MetricType_SUMMARY:
			series[name] = append(slices.Clone(labels), "quantile")
			series[name+"_sum"], series[name+"_count"] = labels, labels
		default:
			series[name] = labels
		}
	}
	for _, want := range []string{"tokenwise_decisions_total", "tokenwise_check_duration_seconds_bucket", "tokenwise_use_limit_store_errors_total",
		"tokenwise_rate_limit_decisions_total"} {
		if _, ok := series[want]; !ok {
			t.Fatalf("the registry does not export %s: %v", want, series)
		}
	}
	return series
}

// checkExpr parses expr with Prometheus's own PromQL parser and checks that
// every series it selects is one tokenwise exports, with labels it has.
func checkExpr(expr string, series map[string][]string) ([]string, error) {
	ast, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var problems []string
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name == "" {
			problems = append(problems, fmt.Sprintf("%s names no metric", vs))
			return nil
		}
		names = append(names, vs.Name)
		labels, exported := series[vs.Name]
		if !exported {
			problems = append(problems, fmt.Sprintf("%s is not a series tokenwise exports", vs.Name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if !slices.Contains(labels, m.Name) && !slices.Contains(scrapeLabels, m.Name) {
				problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", vs.Name, m.Name, labels))
			}
		}
		return nil
	})
	if len(problems) > 0 {
		return names, errors.New(strings.Join(problems, "; "))
	}
	return names, nil
}

// grafanaVariables are the dashboard's variables with values of the kind
// Grafana puts in their place; any other $variable is a mistake.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$job", ".+", "$issuer", ".+")

var leftoverVariable = regexp.MustCompile(`\$\w+`)

// dashboardQueries returns every query of the dashboard: panel targets
// (rows included) and the metric of each label_values variable.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	queries := map[string]string{}
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			for i, target := range p.Targets {
				queries[fmt.Sprintf("panel %q target %d", p.Title, i)] = target.Expr
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+), *\w+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
		}
		queries["variable "+v.Name] = m[1]
	}
	return queries
}

func TestGrafanaDashboard(t *testing.T) {
	series := exportedSeries(t)
	queries := dashboardQueries(t)
	if len(queries) < 15 {
		t.Fatalf("only %d queries in the dashboard", len(queries))
	}
	used := map[string]bool{}
	all := ""
	for where, q := range queries {
		expr := grafanaVariables.Replace(q)
		if v := leftoverVariable.FindString(expr); v != "" {
			t.Errorf("%s: unknown variable %s", where, v)
			continue
		}
		names, err := checkExpr(expr, series)
		if err != nil {
			t.Errorf("%s: %v\n  %s", where, err, q)
		}
		for _, n := range names {
			used[n] = true
		}
		all += q + "\n"
	}
	// What the dashboard is for: each of these has a panel.
	for _, want := range []string{"tokenwise_decisions_total", "tokenwise_check_duration_seconds_bucket", "tokenwise_jwks_refreshes_total",
		"tokenwise_jwks_refresh_failures_total", "tokenwise_use_limit_store_duration_seconds_bucket", "tokenwise_use_limit_store_errors_total",
		"tokenwise_rate_limit_decisions_total"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
	for _, want := range []string{"sum by (outcome)", "sum by (reason)", "histogram_quantile(0.99", `reason="already_used"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no query has %s", want)
		}
	}
}

// alertRules is a Prometheus rule file, read strictly.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertingRules(t *testing.T) {
	series := exportedSeries(t)
	f, err := os.Open("observability/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var rules alertRules
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Annotations["summary"] == "" || !slices.Contains([]string{"warning", "critical"}, r.Labels["severity"]) {
				t.Errorf("rule %q: want alert, labels.severity (warning or critical) and annotations.summary", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if _, err := checkExpr(r.Expr, series); err != nil {
				t.Errorf("rule %s: %v\n  %s", r.Alert, err, r.Expr)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d rules", n)
	}
}

// The checks can fail: a typo in a series or a label is caught, and so is
// PromQL that does not parse.
func TestObservabilityCheckCatchesMistakes(t *testing.T) {
	series := exportedSeries(t)
	for _, bad := range []string{
		`rate(tokenwise_decision_total[5m])`,
		`sum by (reason) (rate(tokenwise_decisions_total{reasn="x"}[5m]))`,
		`sum(rate(tokenwise_decisions_total[5m])`,
		`rate({job="tokenwise"}[5m])`,
	} {
		if _, err := checkExpr(bad, series); err == nil {
			t.Errorf("%s passed", bad)
		}
	}
	if _, err := checkExpr(`sum by (limit) (rate(tokenwise_rate_limit_decisions_total{result="limited",job="x"}[5m]))`, series); err != nil {
		t.Errorf("a pending series with its labels: %v", err)
	}
}
