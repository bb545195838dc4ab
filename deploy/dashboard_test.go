package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/sqlpipe/remix/internal/metrics"
)

const dashboardFile = "grafana/remix.json"

// catalogue returns every series name the processes export, with the
// labels each carries: the metrics catalogue built by metrics.New, a child
// made for each labelled metric so the registry gathers it, histogram
// series expanded into _bucket, _sum and _count.
func catalogue(t *testing.T) map[string][]string {
	t.Helper()
	m := metrics.New()
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		get := v.Field(i).MethodByName("GetMetricWithLabelValues")
		if !get.IsValid() {
			continue // the registry, or an unlabelled metric
		}
		made := false
		for n := 0; n <= 8 && !made; n++ { // the label count is not exported: try until it fits
			args := make([]reflect.Value, n)
			for j := range args {
				args[j] = reflect.ValueOf("x")
			}
			out := get.Call(args)
			made = out[len(out)-1].IsNil()
		}
		if !made {
			t.Fatalf("metrics.%s: cannot make a child", v.Type().Field(i).Name)
		}
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	for _, f := range families {
		var labels []string
		if len(f.Metric) > 0 {
			for _, l := range f.Metric[0].Label {
				labels = append(labels, l.GetName())
			}
		}
		name := f.GetName()
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			series[name+"_bucket"] = append(slices.Clone(labels), "le")
			series[name+"_sum"] = labels
			series[name+"_count"] = labels
		case dto.MetricType_SUMMARY:
			series[name] = append(slices.Clone(labels), "quantile")
			series[name+"_sum"] = labels
			series[name+"_count"] = labels
		default:
			series[name] = labels
		}
	}
	return series
}

// promql is what a small reading of a PromQL expression finds: the metric
// names, the labels it matches or groups on, and the labels of its result
// when it aggregates (the by lists).
type promql struct {
	metrics, labels, by []string
}

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promqlMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)`)
	promqlToken    = regexp.MustCompile(`\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promqlKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"}
)

// parsePromQL reads the names out of an expression: strings, label
// matchers, ranges and grouping lists are taken out first; what is left
// that is neither a number, a function call nor a keyword is a metric name.
func parsePromQL(expr string) promql {
	var q promql
	e := promqlString.ReplaceAllString(expr, `""`)
	for _, m := range promqlMatchers.FindAllString(e, -1) {
		for _, l := range promqlMatcher.FindAllStringSubmatch(m, -1) {
			q.labels = append(q.labels, l[1])
		}
	}
	e = promqlMatchers.ReplaceAllString(e, " ")
	e = promqlRange.ReplaceAllString(e, " ")
	for _, g := range promqlGrouping.FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(g[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				q.labels = append(q.labels, l)
				if g[1] == "by" {
					q.by = append(q.by, l)
				}
			}
		}
	}
	e = promqlGrouping.ReplaceAllString(e, " ")
	for _, tok := range promqlToken.FindAllStringSubmatch(e, -1) {
		word := tok[0]
		if tok[1] != "" || word[0] >= '0' && word[0] <= '9' || slices.Contains(promqlKeywords, strings.ToLower(word)) {
			continue // a call, a number, a keyword
		}
		q.metrics = append(q.metrics, word)
	}
	return q
}

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"instance", "job", "pod", "namespace"}

// dashboardQuery is one query of the dashboard, with where it is.
type dashboardQuery struct {
	where, expr, legend string
}

// dashboardQueries walks the panels (and the panels of rows) and the
// template variables.
func dashboardQueries(t *testing.T) (queries []dashboardQuery, titles []string) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatalf("the dashboard is an input of this test: %v", err)
	}
	type target struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			titles = append(titles, p.Title)
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				queries = append(queries, dashboardQuery{fmt.Sprintf("panel %q query %d", p.Title, i), tg.Expr, tg.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, s)
			continue
		}
		queries = append(queries, dashboardQuery{"variable " + v.Name, fmt.Sprintf("max by (%s) (%s)", m[2], m[1]), ""})
	}
	return queries, titles
}

// TestDashboardUsesTheCatalogue: every query of the dashboard names only
// metrics of the catalogue, and only labels those metrics carry; every
// legend names a label the query's result keeps.
func TestDashboardUsesTheCatalogue(t *testing.T) {
	t.Parallel()
	series := catalogue(t)
	queries, _ := dashboardQueries(t)
	if len(queries) == 0 {
		t.Fatal("no queries")
	}
	used := map[string]bool{}
	for _, q := range queries {
		p := parsePromQL(q.expr)
		if len(p.metrics) == 0 {
			t.Errorf("%s: no metric in %q", q.where, q.expr)
		}
		known := slices.Clone(targetLabels)
		for _, m := range p.metrics {
			labels, ok := series[m]
			if !ok {
				t.Errorf("%s: %s is not in the metrics catalogue (internal/metrics/catalog.go)", q.where, m)
			}
			used[m] = true
			known = append(known, labels...)
		}
		slices.Sort(p.labels)
		for _, l := range slices.Compact(p.labels) {
			if !slices.Contains(known, l) {
				t.Errorf("%s: label %q is not a label of %v", q.where, l, p.metrics)
			}
		}
		for _, l := range regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`).FindAllStringSubmatch(q.legend, -1) {
			if !slices.Contains(p.by, l[1]) {
				t.Errorf("%s: the legend shows {{%s}}, which the result of %q does not keep", q.where, l[1], q.expr)
			}
		}
	}
	// What an on-call engineer looks for first has a panel.
	for _, m := range []string{
		"remix_ingest_changes_total", "remix_pusher_entries_total", // throughput
		"remix_pusher_latency_seconds_bucket",                              // latency
		"remix_target_backlog_entries", "remix_target_backlog_age_seconds", // backlog
		"remix_source_read_offset", "remix_source_confirmed_offset", // source positions
		"remix_dead_letters", "remix_pusher_dead_letters_total", "remix_ingest_dead_letters_total", // dead letters
		"remix_pusher_rate_limit_wait_seconds_total", // rate-limit waits
		"remix_ingest_leader",                        // lock holder
		"remix_pusher_stalled_partitions", "remix_pusher_lease_lapses_total",
	} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// TestPromQLReading: the small reading above finds what it should.
func TestPromQLReading(t *testing.T) {
	t.Parallel()
	p := parsePromQL(`histogram_quantile(0.99, sum by (target, le) (rate(remix_pusher_latency_seconds_bucket{target=~"$target", x!="a{b}"}[$__rate_interval]))) / on (target) group_left max by (target) (remix_y) > 1e3`)
	if !slices.Equal(p.metrics, []string{"remix_pusher_latency_seconds_bucket", "remix_y"}) {
		t.Errorf("metrics %v", p.metrics)
	}
	if !slices.Equal(p.by, []string{"target", "le", "target"}) || !slices.Contains(p.labels, "x") || !slices.Contains(p.labels, "target") {
		t.Errorf("by %v, labels %v", p.by, p.labels)
	}
}
