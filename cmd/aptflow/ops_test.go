package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// withPassword returns dbURL with a password, and that password. Trust
// authentication ignores it; a server that needs one keeps its own.
func withPassword(t *testing.T, dbURL string) (string, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if pw, ok := u.User.Password(); ok {
		return dbURL, pw
	}
	const pw = "db-s3cret-pw"
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String(), pw
}

// TestServeOps runs `aptflow serve` in-process, as main does, and checks
// its ops surface: open health endpoints, the guarded metrics and River UI,
// metrics that move when a transition's e-mail goes out, and logs that are
// JSON, shared with River, and free of secrets and personal data.
func TestServeOps(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	dbURL, dbPassword := withPassword(t, dbtest.URL(t))
	const opsAuth, smtpPassword = "ops:ops-s3cret-pw", "smtp-s3cret-pw"
	e := baseEnv(t, dbURL, "smtp://mailer:"+smtpPassword+"@"+mp.SMTPAddr).with("OPS_BASIC_AUTH", opsAuth)
	base := e["PUBLIC_URL"]
	p := startRun(t, e, base, "serve")
	token := createToken(t, e)
	w := newWorld(t, base, token)
	db := openDB(t, dbURL)

	get := func(t *testing.T, path, userPass string) (*http.Response, string) {
		t.Helper()
		return httpGet(t, base+path, userPass)
	}

	t.Run("OpenEndpoints", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
			if resp, body := get(t, path, ""); resp.StatusCode != 200 {
				t.Errorf("%s: %d %s", path, resp.StatusCode, body)
			}
		}
	})

	t.Run("OpsAuth", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/riverui/", "/riverui/api/features", "/riverui/api/jobs?state=completed"} {
			if resp, _ := get(t, path, ""); resp.StatusCode != 401 {
				t.Errorf("%s without credentials: %d", path, resp.StatusCode)
			}
			if resp, _ := get(t, path, "ops:wrong"); resp.StatusCode != 401 {
				t.Errorf("%s with a wrong password: %d", path, resp.StatusCode)
			}
			if resp, body := get(t, path, opsAuth); resp.StatusCode != 200 {
				t.Errorf("%s with credentials: %d %.200s", path, resp.StatusCode, body)
			}
		}
		resp, body := get(t, "/riverui/", opsAuth)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "/riverui/") {
			t.Errorf("River UI page: %s %.300s", resp.Header.Get("Content-Type"), body)
		}
		_, body = get(t, "/riverui/api/features", opsAuth)
		var features struct {
			HideArgs *bool `json:"job_list_hide_args_by_default"`
		}
		if err := json.Unmarshal([]byte(body), &features); err != nil || features.HideArgs == nil || !*features.HideArgs {
			t.Errorf("River UI features %s: job arguments must be hidden by default", body)
		}
	})

	// opsDo sends req as the operator (OPS_BASIC_AUTH) and returns its
	// status.
	opsDo := func(t *testing.T, req *http.Request) int {
		t.Helper()
		u, pw, _ := strings.Cut(opsAuth, ":")
		req.SetBasicAuth(u, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	t.Run("CrossSiteRiverUI", func(t *testing.T) {
		// What the security review did: from another site's page, a
		// text/plain POST (no preflight) to River UI's API cancelled a
		// pending job. The operator's browser sends the credentials.
		var job int64
		if err := db.QueryRow(context.Background(), `
			INSERT INTO river_job (kind, args, queue, state, scheduled_at, max_attempts, priority)
			VALUES ('cross_site_test', '{}', 'maintenance', 'scheduled', now() + interval '1 day', 1, 1) RETURNING id`).Scan(&job); err != nil {
			t.Fatal(err)
		}
		cancel := func(headers ...string) int {
			req, _ := http.NewRequest("POST", base+"/riverui/api/jobs/cancel", strings.NewReader(fmt.Sprintf(`{"ids": ["%d"]}`, job)))
			req.Header.Set("Content-Type", "text/plain")
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			return opsDo(t, req)
		}
		state := func() string {
			var s string
			if err := db.QueryRow(context.Background(), `SELECT state FROM river_job WHERE id = $1`, job).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		for _, h := range [][]string{
			{"Origin", "http://evil.example"},
			{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site"},
		} {
			if code := cancel(h...); code != 403 || state() != "scheduled" {
				t.Errorf("cross-site cancel %v: %d, job %s", h, code, state())
			}
		}
		// The operator's own page may.
		if code := cancel("Origin", base, "Sec-Fetch-Site", "same-origin"); code != 200 || state() != "cancelled" {
			t.Errorf("same-origin cancel: %d, job %s", code, state())
		}
	})

	t.Run("ForeignHost", func(t *testing.T) {
		// DNS rebinding: the attacker's name, pointed at this loopback
		// address, reaches the listener with its own name in Host.
		for _, path := range []string{"/metrics", "/riverui/", "/riverui/api/features", "/debug/pprof/"} {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Host = "rebind.evil.example"
			if code := opsDo(t, req); code != http.StatusMisdirectedRequest {
				t.Errorf("%s with Host %s: %d, want 421", path, req.Host, code)
			}
		}
		if resp, _ := get(t, "/metrics", opsAuth); resp.StatusCode != 200 {
			t.Errorf("/metrics by its own address: %d", resp.StatusCode)
		}
	})

	t.Run("MetricsMove", func(t *testing.T) {
		before, help := scrape(t, base+"/metrics", opsAuth)
		// The families exposed before any job ran; the others appear with
		// their first sample.
		for _, name := range []string{
			"aptflow_jobs", "aptflow_job_oldest_available_age_seconds", "aptflow_dossiers_stale", "aptflow_stats_up",
			"aptflow_transitions_total", "aptflow_http_request_duration_seconds",
		} {
			if help[name] == "" {
				t.Errorf("%s: not exposed, or without help text", name)
			}
		}
		const (
			transitions = `aptflow_transitions_total{event="passer_en_instruction"}`
			sent        = `aptflow_emails_total{kind="en_instruction",status="sent"}`
			completed   = `aptflow_jobs{queue="email",state="completed"}`
			waited      = `aptflow_job_queue_wait_seconds_count{kind="send_email",queue="email"}`
			ran         = `aptflow_job_run_seconds_count{kind="send_email",outcome="completed",queue="email"}`
			oldest      = `aptflow_job_oldest_available_age_seconds{queue="email"}`
			stale       = `aptflow_dossiers_stale`
			up          = `aptflow_stats_up`
			// The API's requests, by route pattern: the dossier's id is not
			// in the labels.
			events = `aptflow_http_requests_total{code="200",method="POST",route="/v1/dossiers/{id}/events"}`
			timed  = `aptflow_http_request_duration_seconds_count{route="/v1/dossiers/{id}/events"}`
		)
		for _, k := range []string{transitions, sent, completed, oldest, stale, timed} {
			if v, ok := before[k]; !ok || v != 0 {
				t.Errorf("before: %s = %v (present %v), want 0", k, v, ok)
			}
		}
		if before[up] != 1 {
			t.Errorf("before: %s = %v", up, before[up])
		}

		id, _ := w.dossier()
		staleID, _ := w.dossier()
		w.instruct(id)
		waitSQL(t, db, 30*time.Second, `SELECT status = 'sent' FROM email_deliveries WHERE dossier_id = $1`, id)
		// The scan's flag, as the stale scan would set it.
		if _, err := db.Exec(context.Background(), `UPDATE dossiers SET stale_since = now() WHERE id = $1`, staleID); err != nil {
			t.Fatal(err)
		}

		want := map[string]float64{transitions: 1, sent: 1, completed: 1, waited: 1, ran: 1, stale: 1, up: 1, events: 1, timed: 1}
		var after map[string]float64
		// The database gauges are read at most every few seconds.
		deadline := time.Now().Add(20 * time.Second)
		for {
			after, help = scrape(t, base+"/metrics", opsAuth)
			diff := ""
			for k, v := range want {
				if after[k] != v {
					diff += fmt.Sprintf(" %s=%v (want %v)", k, after[k], v)
				}
			}
			if diff == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the e-mail:%s", diff)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if _, ok := after[oldest]; !ok {
			t.Errorf("%s missing", oldest)
		}
		for _, name := range []string{"aptflow_emails_total", "aptflow_job_queue_wait_seconds", "aptflow_job_run_seconds", "aptflow_http_requests_total"} {
			if help[name] == "" {
				t.Errorf("%s: no help text", name)
			}
		}
	})

	t.Run("Logs", func(t *testing.T) {
		logs := p.logs.String()
		for _, secret := range []string{dbPassword, smtpPassword, "ops-s3cret-pw", token} {
			if strings.Contains(logs, secret) {
				t.Errorf("a secret is in the logs: %q", secret)
			}
		}
		// No personal data: the dossiers' names and addresses.
		for _, pd := range []string{"Dupré", "Élodie", "etudiant.test", w.inst} {
			if strings.Contains(logs, pd) {
				t.Errorf("personal data in the logs: %q", pd)
			}
		}
		var starting, river map[string]any
		records, notJSON := logLines(p.logs)
		for _, l := range notJSON {
			t.Errorf("LOG_FORMAT=json, but a line is not JSON: %q", l)
		}
		for _, l := range records {
			switch l["msg"] {
			case "starting":
				starting = l
			case "River client started":
				river = l
			}
		}
		if starting == nil {
			t.Fatal("no start-up line")
		}
		cfg, _ := starting["config"].(map[string]any)
		if db, _ := cfg["database_url"].(string); !strings.Contains(db, "xxxxx") || cfg["ops_basic_auth"] != true || cfg["smtp_url"] == nil {
			t.Errorf("configuration logged at start: %v", cfg)
		}
		if river == nil {
			t.Error("River does not log through aptflow's JSON logger")
		}
	})

	if d, err := p.stop(30 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	} else if d > 10*time.Second {
		t.Errorf("an idle stop took %s", d)
	}
}

// TestRetryFailedEmail follows docs/OPS.md: an e-mail the relay refused
// with a 5xx is failed, its job cancelled, and counted; once the cause is
// fixed, the SQL of the docs puts it back and it goes out. The ops
// endpoints answer a loopback client when OPS_BASIC_AUTH is unset.
func TestRetryFailedEmail(t *testing.T) {
	t.Parallel()
	smtpSrv := newStallingSMTP(t, time.Millisecond)
	smtpSrv.Reject.Store(550)
	dbURL := dbtest.URL(t)
	e := baseEnv(t, dbURL, smtpSrv.URL())
	base := e["PUBLIC_URL"]
	startRun(t, e, base, "serve")
	w := newWorld(t, base, createToken(t, e))
	db := openDB(t, dbURL)
	id, _ := w.dossier()
	w.instruct(id)
	waitSQL(t, db, 30*time.Second, `
		SELECT d.status = 'failed' AND j.state = 'cancelled'
		FROM email_deliveries d JOIN river_job j ON j.kind = 'send_email' AND j.args->>'delivery_id' = d.id::text
		WHERE d.dossier_id = $1`, id)
	if s, _ := scrape(t, base+"/metrics", ""); s[`aptflow_emails_total{kind="en_instruction",status="failed"}`] != 1 {
		t.Errorf("failed e-mails: %v", s[`aptflow_emails_total{kind="en_instruction",status="failed"}`])
	}

	doc, err := os.ReadFile("../../docs/OPS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```sql\nBEGIN;")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("docs/OPS.md: no ```sql block starting with BEGIN;")
	}
	var deliveryID int64
	if err := db.QueryRow(context.Background(), `SELECT id FROM email_deliveries WHERE dossier_id = $1`, id).Scan(&deliveryID); err != nil {
		t.Fatal(err)
	}
	smtpSrv.Reject.Store(0) // the cause is fixed
	sql := "BEGIN;" + strings.ReplaceAll(block, "42", strconv.FormatInt(deliveryID, 10))
	if _, err := db.Exec(context.Background(), sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("the SQL of docs/OPS.md: %v\n%s", err, sql)
	}
	waitSQL(t, db, 30*time.Second, `SELECT status = 'sent' FROM email_deliveries WHERE id = $1`, deliveryID)
	if n := smtpSrv.Taken(); n != 1 {
		t.Errorf("the relay took %d messages, want 1", n)
	}
}
