package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// notExposedYet are the metrics that deploy/ queries before the code that
// exposes them has landed, and who brings it. The test fails once one of
// them is exposed, so that it leaves this list.
var notExposedYet = map[string]string{}

// alertRules reads deploy/prometheus/alerts.yml.
func alertRules(t *testing.T) []struct {
	Alert       string
	Expr        string
	Annotations map[string]string
} {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Expr        string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var rules []struct {
		Alert       string
		Expr        string
		Annotations map[string]string
	}
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// dashboardQueries reads deploy/grafana/aptflow.json: its panels' titles by
// row, and every query.
func dashboardQueries(t *testing.T) (rows []string, exprs []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "aptflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string
		Title  string
		Panels []struct {
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("aptflow.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("aptflow.json: uid %q, title %q", d.UID, d.Title)
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("aptflow.json: panel %q queries nothing", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	return rows, exprs
}

var (
	// metricName finds the metrics an expression reads (PromQL functions
	// and keywords are no metric of ours).
	metricName = regexp.MustCompile(`\b(aptflow_[a-z0-9_]+|go_[a-z0-9_]+|process_[a-z0-9_]+|up)\b`)
	// selector finds the label matchers of a metric.
	selector     = regexp.MustCompile(`\b(aptflow_[a-z0-9_]+)\{([^}]*)\}`)
	labelMatcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// exposition reads a /metrics page: each family's labels, with the
// histogram's _bucket, _sum and _count series under their own names.
func exposition(page string) map[string]map[string]bool {
	families := map[string]map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, _ := strings.Cut(strings.Fields(line)[0], "{")
		if families[name] == nil {
			families[name] = map[string]bool{}
		}
		for _, m := range regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`).FindAllStringSubmatch(labels, -1) {
			families[name][m[1]] = true
		}
	}
	return families
}

// slug is the anchor GitHub gives a Markdown heading.
func slug(heading string) string {
	heading = strings.ToLower(strings.TrimSpace(heading))
	var b strings.Builder
	for _, r := range heading {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestOpsMetricsExposed: every metric that the alert rules and the Grafana
// dashboard query is one that /metrics exposes, with the labels they
// match on, once aptflow has done some work (a dossier accepted, its
// attestation rendered and its e-mails sent); every alert has a summary
// and a runbook that is a section of docs/OPS.md; the dashboard has a row
// for queues, e-mails, webhooks, HTTP and PDF renders.
func TestOpsMetricsExposed(t *testing.T) {
	t.Parallel()
	rules := alertRules(t)
	rows, exprs := dashboardQueries(t)
	if len(rules) < 8 || len(exprs) < 15 {
		t.Fatalf("%d alert rules, %d dashboard queries", len(rules), len(exprs))
	}

	t.Run("Runbooks", func(t *testing.T) {
		doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPS.md"))
		if err != nil {
			t.Fatal(err)
		}
		anchors := map[string]bool{}
		for _, line := range strings.Split(string(doc), "\n") {
			if h, ok := strings.CutPrefix(line, "#"); ok {
				anchors[slug(strings.TrimLeft(h, "#"))] = true
			}
		}
		for _, r := range rules {
			if r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no summary", r.Alert)
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/OPS.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook %q is no section of docs/OPS.md", r.Alert, r.Annotations["runbook"])
			}
		}
	})

	t.Run("DashboardRows", func(t *testing.T) {
		have := strings.ToLower(strings.Join(rows, "|"))
		for _, want := range []string{"queues", "e-mails", "webhooks", "http", "pdf renders"} {
			if !strings.Contains(have, want) {
				t.Errorf("aptflow.json has no row about %s (rows: %q)", want, rows)
			}
		}
	})

	mp := mailpittest.Start(t)
	e := baseEnv(t, dbtest.URL(t), mp.SMTPURL())
	base := e["PUBLIC_URL"]
	startRun(t, e, base, "serve")
	w := newWorld(t, base, createToken(t, e))
	id, usager := w.dossier()
	w.instruct(id)
	w.must("POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "accepter", "instructeur": w.inst}, nil)
	mp.WaitFor(t, "to:"+usager, 2, time.Minute)

	queries := map[string]string{} // expression → where
	for _, r := range rules {
		queries[r.Expr] = "alert " + r.Alert
	}
	for i, q := range exprs {
		queries[q] = fmt.Sprintf("dashboard query %d", i+1)
	}
	// The database gauges are read every few seconds, and a job's
	// histograms and counters move once River reports it completed: wait
	// until every queried metric shows, or the deadline.
	var exposed map[string]map[string]bool
	deadline := time.Now().Add(30 * time.Second)
	for missing := true; missing && time.Now().Before(deadline); {
		_, page := httpGet(t, base+"/metrics", "")
		exposed = exposition(page)
		missing = false
		for q := range queries {
			for _, m := range metricName.FindAllString(q, -1) {
				missing = missing || (m != "up" && notExposedYet[m] == "" && exposed[m] == nil)
			}
		}
		if missing {
			time.Sleep(250 * time.Millisecond)
		}
	}

	pending := map[string]bool{}
	for q, where := range queries {
		for _, m := range metricName.FindAllString(q, -1) {
			switch {
			case m == "up": // Prometheus's own, per scrape target
			case notExposedYet[m] != "":
				pending[m] = true
			case exposed[m] == nil:
				t.Errorf("%s queries %s, which /metrics does not expose:\n%s", where, m, q)
			}
		}
		for _, s := range selector.FindAllStringSubmatch(q, -1) {
			family := exposed[s[1]]
			if family == nil {
				continue
			}
			for _, l := range labelMatcher.FindAllStringSubmatch(s[2], -1) {
				if l[1] != "job" && l[1] != "instance" && !family[l[1]] {
					t.Errorf("%s matches %s on label %q, which it does not have", where, s[1], l[1])
				}
			}
		}
	}
	for m := range notExposedYet {
		if exposed[m] != nil {
			t.Errorf("%s is exposed now: take it out of notExposedYet", m)
		}
	}
	var names []string
	for m := range pending {
		names = append(names, m+" ("+notExposedYet[m]+")")
	}
	sort.Strings(names)
	if len(names) > 0 {
		t.Logf("queried, not exposed yet: %s", strings.Join(names, "; "))
	}
}
