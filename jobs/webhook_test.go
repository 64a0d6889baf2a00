package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/smtptest"
	"github.com/aptflow/aptflow/internal/webhooktest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/jobs/webhook"
	"github.com/aptflow/aptflow/workflow"
)

// subscribe subscribes a receiver to a procedure's events through the API
// and gives it the secret; it returns the subscription's id.
func subscribe(t *testing.T, s *apptest.Stack, proc int64, rcv *webhooktest.Receiver, events ...string) int64 {
	t.Helper()
	if events == nil {
		events = []string{}
	}
	w := s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/webhooks", proc), map[string]any{"url": rcv.URL, "events": events})
	secret, _ := w["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	if err := rcv.SetSecret(secret); err != nil {
		t.Fatal(err)
	}
	return int64(w["id"].(float64))
}

// startReceiver starts a receiver, closed at the end of the test.
func startReceiver(t *testing.T, respond webhooktest.Respond) *webhooktest.Receiver {
	t.Helper()
	r := webhooktest.Start(respond)
	t.Cleanup(r.Close)
	return r
}

// waitDeliveries waits until the receiver holds deliveries that satisfy
// cond, and returns them.
func waitDeliveries(t *testing.T, r *webhooktest.Receiver, timeout time.Duration, cond func([]webhooktest.Delivery) bool) []webhooktest.Delivery {
	t.Helper()
	got, err := r.Wait(timeout, cond)
	if err != nil {
		t.Fatalf("%v: %s", err, describeDeliveries(got))
	}
	return got
}

func describeDeliveries(ds []webhooktest.Delivery) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "\n  %s %s %s status %d verified %v", d.ID, d.Type, d.Body, d.Status, d.Verified)
	}
	return b.String()
}

// deliveriesOf returns a subscription's delivery log through the API.
func deliveriesOf(t *testing.T, s *apptest.Stack, proc, wid int64) []map[string]any {
	t.Helper()
	r := s.Must(200, "GET", fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries", proc, wid), nil)
	var out []map[string]any
	for _, d := range r["deliveries"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// TestWebhookRetriedWithSameID: a receiver that answers 500 then 200 gets
// the same webhook-id and body twice, each attempt signed with its own
// timestamp and verified by the reference library; the delivery log says
// delivered after two attempts, and the metrics count one retry and one
// delivery.
func TestWebhookRetriedWithSameID(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	rcv := startReceiver(t, webhooktest.FirstThen(http.StatusInternalServerError, http.StatusOK))
	wid := subscribe(t, s, proc, rcv, "dossier.created")
	id, _ := s.Dossier(proc)

	got := waitDeliveries(t, rcv, 20*time.Second, func(ds []webhooktest.Delivery) bool { return len(ds) >= 2 })
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2: %s", len(got), describeDeliveries(got))
	}
	first, second := got[0], got[1]
	for _, d := range got {
		if d.Verified != nil {
			t.Errorf("delivery %s: the reference library says %v", d.ID, d.Verified)
		}
		if d.Type != "dossier.created" || d.DossierID() != id || d.Data["procedure_id"] != float64(proc) || d.Data["state"] != "en_construction" {
			t.Errorf("delivery %s", d.Body)
		}
	}
	if first.ID == "" || first.ID != second.ID || !strings.HasPrefix(first.ID, "msg_") {
		t.Errorf("webhook-id %q then %q, want the same msg_…", first.ID, second.ID)
	}
	if string(first.Body) != string(second.Body) {
		t.Errorf("body changed between attempts:\n%s\n%s", first.Body, second.Body)
	}

	var log []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if log = deliveriesOf(t, s, proc, wid); len(log) == 1 && log[0]["status"] == "delivered" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(log) != 1 {
		t.Fatalf("delivery log %v", log)
	}
	d := log[0]
	if d["status"] != "delivered" || d["attempts"] != float64(2) || d["last_status_code"] != float64(200) ||
		d["event_id"] != first.ID || d["type"] != "dossier.created" || d["delivered_at"] == nil {
		t.Errorf("delivery log entry %v", d)
	}
	want := map[string]float64{"delivered": 1, "retry": 1, "failed": 0, "disabled": 0}
	if got := webhookOutcomes(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("aptflow_webhook_deliveries_total %v, want %v", got, want)
	}
}

// webhookOutcomes reads aptflow_webhook_deliveries_total by outcome.
func webhookOutcomes(t *testing.T, s *apptest.Stack) map[string]float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "aptflow_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// waitSQL polls until query returns true.
func waitSQL(t *testing.T, s *apptest.Stack, timeout time.Duration, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if err := s.Pool.QueryRow(t.Context(), query, args...).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still false after %s: %s", timeout, query)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitWebhooksSettled waits until no webhook delivery is pending and no
// deliver_webhook job is left to run: nothing more will arrive.
func waitWebhooksSettled(t *testing.T, s *apptest.Stack, timeout time.Duration) {
	t.Helper()
	waitSQL(t, s, timeout, `SELECT NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE status = 'pending')
		AND NOT EXISTS (SELECT 1 FROM river_job WHERE kind = 'deliver_webhook'
			AND state NOT IN ('completed', 'cancelled', 'discarded'))`)
}

// TestWebhookEveryEvent: each event type the workflow causes arrives once
// per subscription that wants it, signed so that the Standard Webhooks
// reference library verifies it, with ids and states only; a subscription
// to some types gets only those, one on another procedure nothing. The
// logs hold neither the receivers' URLs nor the secrets.
func TestWebhookEveryEvent(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	const bounce = "rebond@etudiant.test"
	srv.OnRcpt(func(to string) error {
		if to == bounce {
			return smtptest.Reject(550, "5.1.1 mailbox unavailable")
		}
		return nil
	})
	s := apptest.Start(t, apptest.Options{SMTPURL: srv.URL()})
	ctx := t.Context()
	proc := s.Procedure()
	other := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	all := startReceiver(t, nil)
	some := startReceiver(t, nil)
	elsewhere := startReceiver(t, nil)
	subscribe(t, s, proc, all)
	subscribe(t, s, proc, some, "dossier.state_changed", "email.failed")
	subscribe(t, s, other, elsewhere)

	// dossier.created, dossier.modified, message.created (usager), avis.created
	d1, usager := s.Dossier(proc)
	s.Must(200, "PATCH", fmt.Sprintf("/v1/dossiers/%d", d1), map[string]any{"demandeur": map[string]any{"emploi": "caissière"}})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", d1), map[string]any{"from": "usager", "body": "Bonjour, voici mon contrat."})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/avis", d1), map[string]any{"expert": "expert@direccte.test", "body": "Avis favorable."})
	// dossier.state_changed ×2, message.created (instructeur), attestation.ready
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d1), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", d1), map[string]any{"from": inst, "body": "Merci, c'est complet."})
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d1), map[string]any{"event": "accepter", "instructeur": inst})
	// email.failed: the applicant's address bounces (550).
	d2 := int64(s.Must(201, "POST", "/v1/dossiers", map[string]any{
		"procedure_id": proc, "usager_email": bounce, "demandeur": apptest.Demandeur(),
	})["id"].(float64))
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", d2), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
	// dossier.stale: d3, the only dossier en construction, a month on.
	d3, _ := s.Dossier(proc)
	if _, err := jobs.ScanStale(ctx, s.Service, s.River, s.Jobs, time.Now().Add(31*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Something on the other procedure: only its own receiver hears of it.
	d4, _ := s.Dossier(other)
	// The purge skips a dossier that a job holds locked at that moment (a
	// follower's notification locks it), leaving it to the next night:
	// let the dossiers' own jobs finish first, so that each run sees them.
	waitSQL(t, s, time.Minute, `SELECT NOT EXISTS (SELECT 1 FROM river_job
		WHERE kind <> 'deliver_webhook' AND state NOT IN ('completed', 'cancelled', 'discarded'))`)
	// dossier.expiring, then dossier.deleted: the purge ten days before
	// the dossiers' conservation (12 months) ends, then a month after it.
	// d1 (decided) and d3 (en construction) go, d2 (en instruction) stays.
	for _, at := range []time.Time{time.Now().AddDate(1, 0, -10), time.Now().AddDate(1, 1, 0)} {
		if _, err := jobs.Purge(ctx, s.Service, s.River, s.Jobs, at); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string]int{
		"dossier.created": 3, "dossier.modified": 1, "message.created": 2, "avis.created": 1,
		"dossier.state_changed": 3, "attestation.ready": 1, "email.failed": 1, "dossier.stale": 1,
		"dossier.expiring": 2, "dossier.deleted": 2,
	}
	if len(want) != len(workflow.WebhookEventTypes()) {
		t.Fatalf("%d event types under test, %d in the contract", len(want), len(workflow.WebhookEventTypes()))
	}
	total := 0
	for _, n := range want {
		total += n
	}
	waitDeliveries(t, all, time.Minute, func(ds []webhooktest.Delivery) bool { return len(ds) >= total })
	waitDeliveries(t, some, time.Minute, func(ds []webhooktest.Delivery) bool { return len(ds) >= 4 })
	waitWebhooksSettled(t, s, time.Minute)

	check := func(t *testing.T, r *webhooktest.Receiver, want map[string]int) []webhooktest.Delivery {
		got := r.Deliveries()
		if fmt.Sprint(webhooktest.ByType(got)) != fmt.Sprint(want) {
			t.Errorf("by type %v, want %v:%s", webhooktest.ByType(got), want, describeDeliveries(got))
		}
		ids := map[string]bool{}
		for _, d := range got {
			if ids[d.ID] {
				t.Errorf("webhook-id %s arrived twice", d.ID)
			}
			ids[d.ID] = true
			if d.Verified != nil {
				t.Errorf("%s %s: the reference library says %v", d.Type, d.ID, d.Verified)
			}
			if d.Data["procedure_id"] == nil || d.Data["dossier_id"] == nil {
				t.Errorf("%s without its ids: %s", d.Type, d.Body)
			}
			if _, err := time.Parse(time.RFC3339Nano, d.EventTime); err != nil {
				t.Errorf("%s: timestamp %q: %v", d.Type, d.EventTime, err)
			}
			for _, pd := range []string{"Dupré", "Élodie", "caissière", "contrat", "favorable", "complet", usager, bounce, inst, "expert@"} {
				if strings.Contains(string(d.Body), pd) {
					t.Errorf("%s carries personal data %q: %s", d.Type, pd, d.Body)
				}
			}
		}
		return got
	}
	t.Run("All", func(t *testing.T) {
		got := check(t, all, want)
		byType := func(typ string, dossier int64) map[string]any {
			for _, d := range got {
				if d.Type == typ && d.DossierID() == dossier {
					return d.Data
				}
			}
			t.Errorf("no %s for dossier %d", typ, dossier)
			return nil
		}
		if d := byType("attestation.ready", d1); d != nil && (d["state"] != "accepte" || len(d["sha256"].(string)) != 64) {
			t.Errorf("attestation.ready %v", d)
		}
		if d := byType("email.failed", d2); d != nil && d["kind"] != workflow.MailEnInstruction {
			t.Errorf("email.failed %v", d)
		}
		if d := byType("dossier.stale", d3); d != nil && (d["state"] != "en_construction" || d["stale_since"] == nil) {
			t.Errorf("dossier.stale %v", d)
		}
		if d := byType("dossier.expiring", d1); d != nil && (d["state"] != "accepte" || d["expires_at"] == nil) {
			t.Errorf("dossier.expiring %v", d)
		}
		if d := byType("dossier.deleted", d3); d != nil && (d["state"] != "en_construction" || d["reason"] != "expire" || d["deleted_at"] == nil) {
			t.Errorf("dossier.deleted %v", d)
		}
		for _, d := range got {
			if (d.Type == "dossier.expiring" || d.Type == "dossier.deleted") && d.DossierID() == d2 {
				t.Errorf("%s of the dossier en instruction", d.Type)
			}
		}
		var accepted map[string]any
		for _, d := range got {
			if d.Type == "dossier.state_changed" && d.Data["state"] == "accepte" {
				accepted = d.Data
			}
		}
		if accepted == nil || accepted["previous_state"] != "en_instruction" || accepted["event"] != "accepter" || accepted["dossier_id"] != float64(d1) {
			t.Errorf("state_changed of the acceptance %v", accepted)
		}
		var froms []string
		for _, d := range got {
			if d.Type == "message.created" {
				froms = append(froms, fmt.Sprint(d.Data["from"]))
			}
		}
		slices.Sort(froms)
		if fmt.Sprint(froms) != "[instructeur usager]" {
			t.Errorf("messages from %v", froms)
		}
	})
	t.Run("Some", func(t *testing.T) { check(t, some, map[string]int{"dossier.state_changed": 3, "email.failed": 1}) })
	t.Run("OtherProcedure", func(t *testing.T) {
		got := check(t, elsewhere, map[string]int{"dossier.created": 1, "dossier.expiring": 1, "dossier.deleted": 1})
		for _, d := range got {
			if d.DossierID() != d4 {
				t.Errorf("%s of dossier %d, want %d", d.Type, d.DossierID(), d4)
			}
		}
	})
	t.Run("NoURLNorSecretInLogs", func(t *testing.T) {
		logs := s.Logs.String()
		for _, leak := range []string{"/hooks/aptflow", "whsec_"} {
			if strings.Contains(logs, leak) {
				t.Errorf("the logs hold %q", leak)
			}
		}
	})
}

// TestWebhookRolledBack: an event is written in the transaction of its
// change: a transition that rolls back sends nothing and leaves no event,
// delivery nor job; the one that commits is sent.
func TestWebhookRolledBack(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	ctx := t.Context()
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	rcv := startReceiver(t, nil)
	subscribe(t, s, proc, rcv, "dossier.state_changed")
	rolledBack, _ := s.Dossier(proc)
	committed, _ := s.Dossier(proc)
	count := func(sql string, args ...any) int {
		var n int
		if err := s.Pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count(`SELECT count(*) FROM webhook_events`)

	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service.TransitionTx(ctx, tx, rolledBack, workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: inst}); err != nil {
		t.Fatal(err)
	}
	var inTx int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&inTx); err != nil || inTx != 1 {
		t.Fatalf("inside the transaction: %d deliveries (%v), want 1", inTx, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM webhook_events`); n != before {
		t.Errorf("%d webhook events after the rollback, %d before", n, before)
	}
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'deliver_webhook'`); n != 0 {
		t.Errorf("%d deliver_webhook jobs after the rollback", n)
	}

	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		_, err := s.Service.TransitionTx(ctx, tx, committed, workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: inst})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, rcv, 20*time.Second, func(ds []webhooktest.Delivery) bool { return len(ds) >= 1 })
	waitWebhooksSettled(t, s, 20*time.Second)
	got := rcv.Deliveries()
	if len(got) != 1 || got[0].DossierID() != committed {
		t.Fatalf("want only the committed transition's event (dossier %d):%s", committed, describeDeliveries(got))
	}
}

// TestWebhookDeadReceiver: a receiver that never answers holds at most
// its share of the webhook workers (WebhookPerSubscription) while another
// receiver gets all its deliveries and the applicants all their e-mails;
// no attempt at the dead one has even timed out by then. Then the dead
// receiver's deliveries time out and are retried.
func TestWebhookDeadReceiver(t *testing.T) {
	t.Parallel()
	const perSubscription = 2
	s := apptest.Start(t, apptest.Options{
		Jobs:           jobs.Config{WebhookWorkers: 4, WebhookPerSubscription: perSubscription},
		WebhookTimeout: 40 * time.Second,
	})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	dead := startReceiver(t, func(webhooktest.Delivery, int) int { return webhooktest.Hang })
	live := startReceiver(t, nil)
	deadID := subscribe(t, s, proc, dead)
	subscribe(t, s, proc, live, "dossier.state_changed")

	const n = 6
	for range n {
		id, _ := s.Dossier(proc)
		s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
	}
	waitDeliveries(t, live, 30*time.Second, func(ds []webhooktest.Delivery) bool { return len(ds) >= n })
	s.Mailpit.WaitFor(t, "subject:examiné", n, 30*time.Second)
	var finished int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1 AND attempts > 0`, deadID).Scan(&finished); err != nil {
		t.Fatal(err)
	}
	if finished != 0 {
		t.Errorf("%d attempts at the dead receiver ended before the live one had everything: it waited for them", finished)
	}
	if got := dead.Count(); got > perSubscription {
		t.Errorf("the dead receiver holds %d requests at once, want at most %d", got, perSubscription)
	}
}

// TestWebhookTimeout: a receiver that does not answer within the timeout
// is tried again, with the same webhook-id, and the second answer counts.
func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{WebhookTimeout: time.Second})
	proc := s.Procedure()
	rcv := startReceiver(t, webhooktest.FirstThen(webhooktest.Hang, http.StatusAccepted))
	wid := subscribe(t, s, proc, rcv, "dossier.created")
	s.Dossier(proc)
	got := waitDeliveries(t, rcv, 30*time.Second, func(ds []webhooktest.Delivery) bool { return len(ds) >= 2 })
	if got[0].ID != got[1].ID || got[0].Status != webhooktest.Hang || got[1].Status != http.StatusAccepted {
		t.Errorf("attempts:%s", describeDeliveries(got))
	}
	waitWebhooksSettled(t, s, 20*time.Second)
	d := deliveriesOf(t, s, proc, wid)[0]
	if d["status"] != "delivered" || d["attempts"] != float64(2) {
		t.Errorf("delivery %v", d)
	}
	if o := webhookOutcomes(t, s); o["retry"] != 1 || o["delivered"] != 1 {
		t.Errorf("outcomes %v", o)
	}
}

// TestWebhookGone: a receiver that answers 410 Gone disables its
// subscription at once: the delivery fails with 410, nothing more is
// written or sent for it, a manual retry is 409 webhook_disabled, and the
// metrics count one disabled.
func TestWebhookGone(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	rcv := startReceiver(t, func(webhooktest.Delivery, int) int { return http.StatusGone })
	wid := subscribe(t, s, proc, rcv, "dossier.created")
	s.Dossier(proc)
	waitSQL(t, s, 20*time.Second, `SELECT disabled_at IS NOT NULL FROM webhook_subscriptions WHERE id = $1`, wid)
	waitWebhooksSettled(t, s, 20*time.Second)

	hooks := s.Must(200, "GET", fmt.Sprintf("/v1/procedures/%d/webhooks", proc), nil)["webhooks"].([]any)
	h := hooks[0].(map[string]any)
	if h["status"] != "disabled" || h["disabled_at"] == nil || !strings.Contains(fmt.Sprint(h["disabled_reason"]), "410") {
		t.Errorf("webhook %v", h)
	}
	log := deliveriesOf(t, s, proc, wid)
	if len(log) != 1 || log[0]["status"] != "failed" || log[0]["last_status_code"] != float64(410) || log[0]["attempts"] != float64(1) {
		t.Fatalf("delivery log %v", log)
	}
	s.Dossier(proc) // after the 410: no delivery written
	if log := deliveriesOf(t, s, proc, wid); len(log) != 1 {
		t.Errorf("%d deliveries after the subscription was disabled", len(log))
	}
	r := s.Do("POST", fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries/%d/retry", proc, wid, int64(log[0]["id"].(float64))), nil)
	if r.StatusCode != http.StatusConflict || r.JSON(t)["code"] != "webhook_disabled" {
		t.Errorf("retry on a disabled webhook: %d %s", r.StatusCode, r.Body)
	}
	if rcv.Count() != 1 {
		t.Errorf("the receiver got %d requests, want 1", rcv.Count())
	}
	if o := webhookOutcomes(t, s); o["disabled"] != 1 || o["delivered"] != 0 {
		t.Errorf("outcomes %v", o)
	}
}

// fakeResolver answers a subscription's host lookup as a DNS server
// would: the fault under test (a name that resolves to a public address
// when subscribed, and to the loopback when dialled) cannot be made with
// the machine's resolver.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host", host)
}

// TestWebhookTargets: without WEBHOOK_ALLOWED_NETWORKS, a subscription to
// anything but https:// on a public address is refused, one entry per bad
// field, and nothing is written; a name that resolved to a public address
// at subscription but resolves to the loopback when a delivery connects
// (DNS rebinding) is refused at connection time: nothing reaches the
// receiver.
func TestWebhookTargets(t *testing.T) {
	t.Parallel()
	public := netip.MustParseAddr("93.184.216.34")
	s := apptest.Start(t, apptest.Options{Webhooks: &webhook.Policy{Resolver: fakeResolver{
		"localhost":        {public},
		"hooks.example.fr": {public},
		"interne.example":  {public, netip.MustParseAddr("10.0.0.7")},
	}}})
	proc := s.Procedure()
	path := fmt.Sprintf("/v1/procedures/%d/webhooks", proc)

	t.Run("AtSubscription", func(t *testing.T) {
		for _, c := range []struct{ url, code string }{
			{"", "required"},
			{"http://127.0.0.1:8080/hooks", "scheme_not_allowed"},
			{"http://hooks.example.fr/hooks", "scheme_not_allowed"},
			{"ftp://hooks.example.fr/", "scheme_not_allowed"},
			{"https://127.0.0.1/hooks", "address_not_allowed"},
			{"https://[::1]/hooks", "address_not_allowed"},
			{"https://10.1.2.3/", "address_not_allowed"},
			{"https://169.254.169.254/latest/meta-data/", "address_not_allowed"},
			{"https://[::ffff:192.168.1.1]/", "address_not_allowed"},
			{"https://100.64.0.1/", "address_not_allowed"},
			{"https://interne.example/", "address_not_allowed"},
			{"https://introuvable.example/", "unresolvable_host"},
			{"https://user:pass@hooks.example.fr/", "invalid_url"},
			{"https://hooks.example.fr/#frag", "invalid_url"},
			{"hooks.example.fr/hooks", "invalid_url"},
		} {
			r := s.Do("POST", path, map[string]any{"url": c.url, "events": []string{"nope", "dossier.created", "aussi.inconnu"}})
			if r.StatusCode != 422 {
				t.Errorf("%q: %d %s", c.url, r.StatusCode, r.Body)
				continue
			}
			var fields []string
			for _, e := range r.JSON(t)["errors"].([]any) {
				e := e.(map[string]any)
				fields = append(fields, fmt.Sprintf("%s:%s", e["field"], e["code"]))
			}
			want := []string{"url:" + c.code, "events.0:unknown_event_type", "events.2:unknown_event_type"}
			if fmt.Sprint(fields) != fmt.Sprint(want) {
				t.Errorf("%q: errors %v, want %v", c.url, fields, want)
			}
		}
		var n int
		if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM webhook_subscriptions`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d subscriptions after refusals (%v)", n, err)
		}
		s.Must(201, "POST", path, map[string]any{"url": "https://hooks.example.fr/aptflow"})
		s.Must(201, "POST", path, map[string]any{"url": "https://93.184.216.34:8443/aptflow", "events": []string{"dossier.created"}})
	})

	t.Run("AtConnection", func(t *testing.T) {
		rcv, tlsCfg := webhooktest.StartTLS(nil)
		t.Cleanup(rcv.Close)
		// The stack's sender trusts the receiver's certificate (made for
		// 127.0.0.1, where localhost leads): only the address check can
		// stop the delivery.
		tlsCfg.ServerName = "127.0.0.1"
		s2 := apptest.Start(t, apptest.Options{WebhookTLS: tlsCfg, Webhooks: &webhook.Policy{Resolver: fakeResolver{"localhost": {public}}}})
		proc := s2.Procedure()
		port := rcv.URL[strings.LastIndexByte(rcv.URL, ':')+1:]
		w := s2.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/webhooks", proc), map[string]any{"url": "https://localhost:" + port, "events": []string{"dossier.created"}})
		wid := int64(w["id"].(float64))
		s2.Dossier(proc)
		waitSQL(t, s2, 20*time.Second, `SELECT attempts >= 2 FROM webhook_deliveries WHERE subscription_id = $1`, wid)
		d := deliveriesOf(t, s2, proc, wid)[0]
		if d["status"] != "pending" || d["last_status_code"] != nil || !strings.Contains(fmt.Sprint(d["last_error"]), "not permitted") ||
			!strings.Contains(fmt.Sprint(d["last_error"]), "127.0.0.1") {
			t.Errorf("delivery %v", d)
		}
		if rcv.Count() != 0 {
			t.Errorf("the receiver on the loopback got %d requests", rcv.Count())
		}
	})
}

// TestWebhookManualRetryWhileRunning: a manual retry while an attempt is
// in flight is a new series of attempts: the attempt in flight records
// nothing, however it ends, and the delivery is sent again after the
// retry, with the same webhook-id.
func TestWebhookManualRetryWhileRunning(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inFlight, release := make(chan struct{}), make(chan struct{})
	rcv := startReceiver(t, func(_ webhooktest.Delivery, seen int) int {
		if seen == 0 {
			close(inFlight)
			<-release // the first attempt waits for the retry
		}
		return http.StatusOK
	})
	wid := subscribe(t, s, proc, rcv, "dossier.created")
	s.Dossier(proc)
	select {
	case <-inFlight:
	case <-time.After(20 * time.Second):
		t.Fatal("no attempt")
	}
	did := int64(deliveriesOf(t, s, proc, wid)[0]["id"].(float64))
	s.Must(202, "POST", fmt.Sprintf("/v1/procedures/%d/webhooks/%d/deliveries/%d/retry", proc, wid, did), nil)
	close(release)
	got := waitDeliveries(t, rcv, 20*time.Second, func(ds []webhooktest.Delivery) bool { return len(ds) >= 2 })
	if got[0].ID != got[1].ID {
		t.Errorf("webhook-ids %s, %s", got[0].ID, got[1].ID)
	}
	waitWebhooksSettled(t, s, 20*time.Second)
	d := deliveriesOf(t, s, proc, wid)[0]
	if d["status"] != "delivered" || d["attempts"] != float64(1) {
		t.Errorf("delivery %v: want delivered by the retry's one recorded attempt", d)
	}
	if rcv.Count() != 2 {
		t.Errorf("%d requests, want 2", rcv.Count())
	}
}
