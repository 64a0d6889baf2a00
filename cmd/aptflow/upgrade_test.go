package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
	"github.com/aptflow/aptflow/internal/webhooktest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

// The database the last release (commit b80071f, migrations 1 to 3) left
// behind, dumped with `pg_dump --no-owner --no-privileges --inserts` (psql's
// \restrict lines removed). It was written by that release's own binary:
// `aptflow token create fixture-admin`, `aptflow demo` (a procedure, two
// instructeurs, four dossiers, one accepted with its attestation), then,
// with SMTP_URL pointing at a closed port so that its jobs stayed pending, a
// fifth dossier taken into instruction and accepted (its attestation
// rendered, its e-mail job retryable), an instructeur's message to an
// applicant, a preference set to daily and an avis. The people are fictitious
// (.example addresses).
const releaseFixture = "testdata/release-b80071f.sql"

// releaseToken is the plaintext of the fixture's admin token (only its
// sha256 is in the dump).
const releaseToken = "aptf_DFak22QXSQu1jKpPL-2L7OPB-LpWmSpS6iSG-FdakNM"

// loadRelease restores the fixture into a fresh empty database and returns
// its URL.
func loadRelease(t *testing.T) string {
	t.Helper()
	dump, err := os.ReadFile(releaseFixture)
	if err != nil {
		t.Fatal(err)
	}
	url := dbtest.EmptyURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Without arguments Exec uses the simple protocol, which runs a script
	// of many statements.
	if _, err := conn.Exec(ctx, string(dump)); err != nil {
		t.Fatalf("restore %s: %v", releaseFixture, err)
	}
	return url
}

// fingerprint describes a database's schema and data: its columns,
// indexes, constraints, triggers, and a digest of every table's rows.
func fingerprint(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var b strings.Builder
	for _, q := range []string{
		`SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
		   FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1`,
		`SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`,
		`SELECT conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		   WHERE connamespace = 'public'::regnamespace ORDER BY 1`,
		`SELECT tgrelid::regclass || ' ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`,
		`SELECT p.proname || ' ' || md5(pg_get_functiondef(p.oid)) FROM pg_proc p
		   WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1`,
	} {
		rows, _ := conn.Query(ctx, q)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	rows, _ := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var n int64
		var digest *string
		id := pgx.Identifier{table}.Sanitize()
		if err := conn.QueryRow(ctx, `SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM `+id+` t`).Scan(&n, &digest); err != nil {
			t.Fatalf("digest %s: %v", table, err)
		}
		fmt.Fprintf(&b, "%s %d %s\n", table, n, deref(digest))
	}
	return b.String()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestUpgradeFromLastRelease upgrades, in place, a database written by the
// last release's binary: `aptflow migrate` succeeds, a second run changes
// nothing, and the data the old release wrote is all there and works: its
// token authenticates, every dossier reads back in its state, each
// attestation keeps its bytes (its sha256 still matches and is what the
// verification page gives), and the jobs it left pending run and send
// their e-mails.
func TestUpgradeFromLastRelease(t *testing.T) {
	t.Parallel()
	url := loadRelease(t)
	db := openDB(t, url)
	ctx := context.Background()
	bulkJob := queueOldBulkEmail(t, db)

	// What the old release wrote, read before the upgrade.
	type attestation struct {
		dossier        int64
		code, sha, pdf string
	}
	rows, _ := db.Query(ctx, `SELECT dossier_id, code, sha256, encode(sha256(pdf), 'hex') FROM attestations ORDER BY dossier_id`)
	before, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (attestation, error) {
		var a attestation
		return a, r.Scan(&a.dossier, &a.code, &a.sha, &a.pdf)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 {
		t.Fatalf("fixture: %d attestations, want 2", len(before))
	}
	rows, _ = db.Query(ctx, `SELECT id, state FROM dossiers ORDER BY id`)
	states, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		ID    int64
		State string
	}])
	if err != nil {
		t.Fatal(err)
	}
	rows, _ = db.Query(ctx, `SELECT id FROM river_job WHERE state IN ('available', 'retryable', 'scheduled') ORDER BY id`)
	pending, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) == 0 {
		t.Fatal("fixture: no pending job")
	}

	// A database in service for years holds dossiers decided long ago: the
	// fixture's refused one (2) was decided three years before this test.
	const old = 2
	if _, err := db.Exec(ctx, `UPDATE dossiers SET decided_at = now() - interval '3 years' WHERE id = $1 AND state = 'refuse'`, old); err != nil {
		t.Fatal(err)
	}

	env := getenvOf(map[string]string{"DATABASE_URL": url})
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"migrate"}, env, &out, &errb); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errb.String())
	}
	t.Logf("first migrate: %s", strings.TrimSpace(out.String()))
	once := fingerprint(t, url)
	out.Reset()
	if err := run(ctx, []string{"migrate"}, env, &out, &errb); err != nil {
		t.Fatalf("second migrate: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "0 aptflow and 0 River migrations applied") {
		t.Errorf("second migrate printed %q", out.String())
	}
	if twice := fingerprint(t, url); twice != once {
		t.Errorf("the second migrate changed the database:\nafter one:\n%s\nafter two:\n%s", once, twice)
	}

	checkScaleUpgrade(t, db, bulkJob)

	// Migration 00010: the cron jobs' runs start from what the release
	// did: its last finished stale scan, its last digests (a completed job
	// River still keeps), so that the first scrape knows them.
	for cron, query := range map[string]string{
		"scan_stale":   `SELECT max(scanned_at) FROM stale_scans WHERE finished_at IS NOT NULL`,
		"send_digests": `SELECT max((args->>'at')::timestamptz) FROM river_job WHERE kind = 'send_digests' AND state = 'completed'`,
	} {
		var want, recorded *time.Time
		if err := db.QueryRow(ctx, query).Scan(&want); err != nil || want == nil {
			t.Fatalf("fixture: no run of %s (%v)", cron, err)
		}
		if err := db.QueryRow(ctx, `SELECT last_run_at FROM cron_runs WHERE name = $1`, cron).Scan(&recorded); err != nil || recorded == nil || !recorded.Equal(*want) {
			t.Errorf("cron_runs of %s after the upgrade: %v (%v), want the release's last run %v", cron, recorded, err, *want)
		}
	}

	// Migration 00004: the old token is admin on every procedure, never
	// used as far as the database knows; the decided dossiers' decision and
	// demandeur are final in the database now.
	var scope string
	var procs []int64
	var lastUsed, expires *time.Time
	if err := db.QueryRow(ctx, `SELECT scope, procedures, last_used_at, expires_at FROM api_tokens WHERE name = 'fixture-admin'`).Scan(
		&scope, &procs, &lastUsed, &expires); err != nil || scope != "admin" || procs != nil || lastUsed != nil || expires != nil {
		t.Errorf("the old token after the upgrade: %s %v %v %v (%v); want admin on every procedure", scope, procs, lastUsed, expires, err)
	}
	for _, set := range []string{`motivation = 'réécrite'`, `decided_at = now()`, `demandeur = jsonb_set(demandeur, '{nom}', '"Usurpé"')`} {
		if _, err := db.Exec(ctx, `UPDATE dossiers SET `+set+` WHERE state = 'accepte'`); err == nil || !strings.Contains(err.Error(), "cannot change") {
			t.Errorf("SQL on the old release's accepted dossiers (%s): %v", set, err)
		}
	}

	// The attestations keep their bytes.
	for _, a := range before {
		var sha, pdf string
		if err := db.QueryRow(ctx, `SELECT sha256, encode(sha256(pdf), 'hex') FROM attestations WHERE dossier_id = $1`, a.dossier).Scan(&sha, &pdf); err != nil {
			t.Fatalf("attestation of dossier %d: %v", a.dossier, err)
		}
		if sha != a.sha || pdf != a.pdf || pdf != sha {
			t.Errorf("attestation of dossier %d: sha256 %s, pdf's %s; before: %s, %s", a.dossier, sha, pdf, a.sha, a.pdf)
		}
	}

	// Migration 00007 adds the webhook tables, empty: it writes nothing
	// about the old data (no event for what happened before it).
	for _, table := range []string{"webhook_subscriptions", "webhook_events", "webhook_deliveries"} {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after the upgrade: %d rows (%v)", table, n, err)
		}
	}
	// The data lifecycle (migration 6): the old procedure keeps dossiers
	// the default 12 months; each old dossier expires 12 months (on the
	// Paris calendar) after its decision, or after its applicant's last
	// activity while en construction; the old stored responses are about
	// no known dossier (IDEMPOTENCY_TTL forgets them).
	var conservation int
	if err := db.QueryRow(ctx, `SELECT conservation_mois FROM procedures`).Scan(&conservation); err != nil || conservation != 12 {
		t.Errorf("conservation_mois of the old procedure: %d (%v), want 12", conservation, err)
	}
	rows, _ = db.Query(ctx, `SELECT id, state, decided_at, last_activity_at, expires_at, deleted_at IS NULL AND expiry_notice_at IS NULL FROM dossiers ORDER BY id`)
	type expiry struct {
		ID                 int64
		State              string
		DecidedAt          *time.Time
		LastActivityAt     time.Time
		ExpiresAt          *time.Time
		AliveAndNotNoticed bool
	}
	expiries, err := pgx.CollectRows(rows, pgx.RowToStructByPos[expiry])
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range expiries {
		base := d.LastActivityAt
		if d.DecidedAt != nil {
			base = *d.DecidedAt
		}
		want := base.In(workflow.Paris()).AddDate(0, 12, 0)
		if d.ExpiresAt == nil || !d.ExpiresAt.Equal(want) || !d.AliveAndNotNoticed {
			t.Errorf("dossier %d (%s) after the upgrade: expires_at %v, want %v; alive and not noticed: %v", d.ID, d.State, d.ExpiresAt, want, d.AliveAndNotNoticed)
		}
	}
	var keyed int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE dossier_id IS NOT NULL`).Scan(&keyed); err != nil || keyed != 0 {
		t.Errorf("%d old idempotency keys tied to a dossier (%v), want 0", keyed, err)
	}
	// serve runs the purge when it starts, as of the real clock: from
	// November 2027 on, it would announce the expiry of the fixture's
	// dossiers that the rest of this test reads. A long extension keeps
	// them, whatever the year this test runs in; all but the old one.
	if _, err := db.Exec(ctx, `UPDATE dossiers SET conservation_extension_mois = 1200 WHERE id <> $1`, old); err != nil {
		t.Fatal(err)
	}
	// Migration 00011: the first purge after the upgrade does not erase
	// the old dossier, two years past its expiry: it tells its applicant,
	// and its expiry becomes RETENTION_NOTICE after the notice.
	out.Reset()
	if err := run(ctx, []string{"purge"}, env, &out, &errb); err != nil ||
		!strings.HasPrefix(out.String(), "purged 0 dossiers (tombstones kept); 1 expiry notice queued") {
		t.Fatalf("first purge after the upgrade: %v, %q", err, out.String())
	}
	var told, noticed time.Time
	if err := db.QueryRow(ctx, `SELECT expires_at, expiry_notice_at FROM dossiers WHERE id = $1 AND deleted_at IS NULL`, old).Scan(&told, &noticed); err != nil {
		t.Fatalf("the old dossier after the first purge: %v", err)
	}
	if told.Before(noticed.Add(workflow.DefaultRetentionNotice)) {
		t.Fatalf("the old dossier expires at %v, less than RETENTION_NOTICE after its notice at %v", told, noticed)
	}

	// The new code serves what the old one wrote, and runs its jobs.
	mp := mailpittest.Start(t)
	e := baseEnv(t, url, mp.SMTPURL())
	e["WEBHOOK_SECRET_KEY"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	e["WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
	base := "http://" + e["HTTP_ADDR"]
	startRun(t, e, base, "serve")
	c := &demoClient{base: base, token: releaseToken, http: &http.Client{Timeout: 30 * time.Second}}
	var list bytes.Buffer
	if err := run(ctx, []string{"token", "list"}, env, &list, &errb); err != nil || !regexp.MustCompile(`(?m)^1\s+fixture-admin\s+admin\s+all\s`).MatchString(list.String()) {
		t.Errorf("token list after the upgrade: %v\n%s", err, list.String())
	}
	for _, s := range states {
		var d struct{ State string }
		if err := c.do(ctx, "GET", fmt.Sprintf("/v1/dossiers/%d", s.ID), nil, &d); err != nil {
			t.Fatalf("dossier %d with the old release's token: %v", s.ID, err)
		}
		if d.State != s.State {
			t.Errorf("dossier %d: state %q, was %q", s.ID, d.State, s.State)
		}
	}
	for _, a := range before {
		var v struct {
			DossierID int64  `json:"dossier_id"`
			SHA256    string `json:"sha256"`
			Status    string `json:"status"`
			Signed    *bool  `json:"signed"`
		}
		req, _ := http.NewRequest("GET", base+"/attestations/"+a.code, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if err != nil || v.DossierID != a.dossier || v.SHA256 != a.sha {
			t.Errorf("verification of dossier %d: %+v, %v; want its sha256 %s", a.dossier, v, err, a.sha)
		}
		// Migration 00005: an attestation rendered before was not signed,
		// and says so; it has a status computed from its dates; the file
		// the applicant holds still compares as the one issued.
		if v.Signed == nil || *v.Signed || v.Status == "" {
			t.Errorf("verification of dossier %d after 00005: signed %v, status %q; want signed false and a status", a.dossier, v.Signed, v.Status)
		}
		var pdf []byte
		if err := db.QueryRow(ctx, `SELECT pdf FROM attestations WHERE dossier_id = $1`, a.dossier).Scan(&pdf); err != nil {
			t.Fatal(err)
		}
		req, _ = http.NewRequest("POST", base+"/attestations/"+strings.ToUpper(a.code), bytes.NewReader(pdf))
		req.Header.Set("Content-Type", "application/pdf")
		req.Header.Set("Accept", "application/json")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var cmp struct{ Match bool }
		err = json.NewDecoder(resp.Body).Decode(&cmp)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !cmp.Match {
			t.Errorf("the old release's attestation of dossier %d compared with itself: %d, match %v, %v", a.dossier, resp.StatusCode, cmp.Match, err)
		}
	}
	// The old release's procedures have no signataire: their attestations
	// print the service, as they did.
	var withSignataire int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM procedures WHERE signataire_nom IS NOT NULL OR signataire_qualite IS NOT NULL`).Scan(&withSignataire); err != nil || withSignataire != 0 {
		t.Errorf("procedures with a signataire after 00005: %d, %v", withSignataire, err)
	}
	// No cron job is overdue: the release ran the last ones, or the new
	// leader runs them on start (when this test runs on a later day).
	deadline := time.Now().Add(time.Minute)
	for {
		m, _ := scrape(t, base+"/metrics", "")
		if m[`aptflow_cron_overdue_seconds{cron="scan_stale"}`] == 0 && m[`aptflow_cron_overdue_seconds{cron="send_digests"}`] == 0 &&
			m[`aptflow_cron_last_success_timestamp_seconds{cron="scan_stale"}`] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cron metrics after the upgrade: scan_stale overdue %v, last %v; send_digests overdue %v",
				m[`aptflow_cron_overdue_seconds{cron="scan_stale"}`], m[`aptflow_cron_last_success_timestamp_seconds{cron="scan_stale"}`],
				m[`aptflow_cron_overdue_seconds{cron="send_digests"}`])
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The old token, admin everywhere, may create a procedure; its use is
	// recorded.
	if err := c.do(ctx, "POST", "/v1/procedures", map[string]any{"libelle": "APT", "service": map[string]any{"nom": "Préfecture", "adresse": "Lyon"},
		"stale_after_days": 30, "heures_hebdo_max": 20}, nil); err != nil {
		t.Errorf("the old token creates a procedure: %v", err)
	}
	waitSQL(t, db, 10*time.Second, `SELECT last_used_at IS NOT NULL FROM api_tokens WHERE name = 'fixture-admin'`)
	// Every job the old release left pending completes: its e-mails go out.
	waitSQL(t, db, 2*time.Minute, `SELECT count(*) = 0 FROM river_job WHERE id = ANY($1) AND state <> 'completed'`, pending)
	waitSQL(t, db, time.Minute, `SELECT count(*) = 0 FROM email_deliveries WHERE status = 'pending'`)
	msgs := mp.WaitFor(t, "to:lukas.nowak@etudiant.example", 2, time.Minute)
	var accepted string
	for _, m := range msgs {
		if strings.Contains(m.Subject, "accepté") {
			accepted = m.ID
		}
	}
	if accepted == "" {
		t.Fatalf("no acceptance e-mail among %+v", msgs)
	}
	msg, err := mp.Message(ctx, accepted)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Attachments) != 1 {
		t.Fatalf("acceptance e-mail: %d attachments", len(msg.Attachments))
	}
	pdf, err := mp.Attachment(ctx, accepted, msg.Attachments[0].PartID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pdf)
	if got := hex.EncodeToString(sum[:]); got != before[1].sha {
		t.Errorf("the attached PDF's sha256 is %s, the stored attestation's %s", got, before[1].sha)
	}

	// Migration 00008 (e-mail links): the old procedures have no liens and
	// no reply_to, and the e-mails the old release left pending go out as
	// the new ones do without them: no link, no Reply-To, signed by the
	// service alone; the acceptance, whose delivery names no history row,
	// shows the decision's motivation.
	var withLinks int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM procedures
		WHERE lien_usager IS NOT NULL OR lien_instructeur IS NOT NULL OR reply_to IS NOT NULL`).Scan(&withLinks); err != nil || withLinks != 0 {
		t.Errorf("%d old procedures with links (%v)", withLinks, err)
	}
	for _, m := range msgs {
		full, err := mp.Message(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{full.Text, full.HTML} {
			if strings.Contains(body, "{id}") || strings.Contains(strings.ToLower(body), "aptflow") || !strings.Contains(body, "ne pas y répondre") {
				t.Errorf("%s after the upgrade:\n%s", m.Subject, body)
			}
		}
		if len(full.ReplyTo) != 0 {
			t.Errorf("%s: Reply-To %v", m.Subject, full.ReplyTo)
		}
	}
	if !strings.Contains(msg.Text, "Dossier complet.") {
		t.Errorf("the acceptance lost its motivation:\n%s", msg.Text)
	}

	// The old release's procedure takes a webhook with the old release's
	// token, and the old data's changes are sent, signed.
	var dossier, procedure int64
	var instructeur string
	if err := db.QueryRow(ctx, `
		SELECT d.id, d.procedure_id, i.email FROM dossiers d
		JOIN procedure_instructeurs pi ON pi.procedure_id = d.procedure_id
		JOIN instructeurs i ON i.id = pi.instructeur_id
		WHERE d.state = 'en_construction' ORDER BY d.id, i.id LIMIT 1`).Scan(&dossier, &procedure, &instructeur); err != nil {
		t.Fatalf("fixture: no dossier en construction: %v", err)
	}
	rcv := webhooktest.Start(nil)
	t.Cleanup(rcv.Close)
	var hook struct{ Secret string }
	if err := c.do(ctx, "POST", fmt.Sprintf("/v1/procedures/%d/webhooks", procedure), map[string]any{"url": rcv.URL}, &hook); err != nil {
		t.Fatal(err)
	}
	if err := rcv.SetSecret(hook.Secret); err != nil {
		t.Fatal(err)
	}
	if err := c.do(ctx, "POST", fmt.Sprintf("/v1/dossiers/%d/events", dossier), map[string]any{"event": "passer_en_instruction", "instructeur": instructeur}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := rcv.Wait(time.Minute, func(ds []webhooktest.Delivery) bool { return len(ds) >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	if d := got[0]; d.Type != "dossier.state_changed" || d.DossierID() != dossier || d.Data["state"] != "en_instruction" || d.Verified != nil {
		t.Errorf("delivery %s %s (verified: %v)", d.Type, d.Body, d.Verified)
	}

	// The old dossier's notice went out, with the day of its purge; the
	// purge erases it on that day, not a microsecond before.
	notices := mp.WaitFor(t, `to:joel.nkoulou-boeuf@etudiant.example subject:"sera supprimé"`, 1, time.Minute)
	if want := templates.DateFR(workflow.DateOf(told, workflow.Paris())); !strings.HasSuffix(notices[0].Subject, want) {
		t.Errorf("the old dossier's notice %q, want its day %s", notices[0].Subject, want)
	}
	for _, p := range []struct {
		at   time.Time
		want string
	}{{told.Add(-time.Microsecond), "purged 0 dossiers"}, {told, "purged 1 dossier "}} {
		// serve's own purge, run when it starts, may hold the lock.
		deadline := time.Now().Add(time.Minute)
		for {
			out.Reset()
			err := run(ctx, []string{"purge", "--now", p.at.Format(time.RFC3339Nano)}, env, &out, &errb)
			if errors.Is(err, jobs.ErrPurgeRunning) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if err != nil || !strings.HasPrefix(out.String(), p.want) {
				t.Errorf("purge as of %s: %v, %q, want %q", p.at, err, out.String(), p.want)
			}
			break
		}
	}
	var gone bool
	if err := db.QueryRow(ctx, `SELECT deleted_at IS NOT NULL FROM dossiers WHERE id = $1`, old).Scan(&gone); err != nil || !gone {
		t.Errorf("the old dossier after its purge day: purged %v (%v)", gone, err)
	}
}
