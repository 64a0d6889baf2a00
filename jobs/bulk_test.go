package jobs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/jobs"
)

// bulkBacklog seeds n dossiers of proc en construction, inactive for 60
// days, and runs a stale scan as of now: n reminders and an instructeur
// e-mail queued as bulk mail. It returns when they are all queued.
func bulkBacklog(t *testing.T, s *apptest.Stack, proc int64, n int) {
	t.Helper()
	model, _ := s.Dossier(proc)
	if _, err := s.Pool.Exec(t.Context(), `
		INSERT INTO dossiers (procedure_id, usager_email, demandeur, last_activity_at)
		SELECT procedure_id, 'rappel-' || g || '@etudiant.test', demandeur, now() - interval '60 days'
		FROM dossiers, generate_series(1, $2) g WHERE id = $1`, model, n); err != nil {
		t.Fatal(err)
	}
	res, err := jobs.ScanStale(t.Context(), s.Service, s.River, s.Jobs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Reminders != n || res.InstructeurEmails != 1 {
		t.Fatalf("scan: %+v, want %d reminders and 1 instructeur e-mail", res, n)
	}
}

// TestDecisionAheadOfBulk: an acceptance decided after a stale scan queued
// 150 reminders (bulk mail, 10 a second under SMTP_MAX_RATE) goes out with
// its attestation while most of them still wait: bulk mail never holds back
// the e-mails people wait for. With one e-mail queue, it went out after the
// last reminder (issue 19).
func TestDecisionAheadOfBulk(t *testing.T) {
	t.Parallel()
	const reminders = 150
	s := apptest.Start(t, apptest.Options{Jobs: jobs.Config{BulkRate: 10}})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, usager := s.Dossier(proc)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
	s.WaitDelivery(id, "en_instruction", "sent", 30*time.Second)

	bulkBacklog(t, s, proc, reminders)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "accepter", "instructeur": inst})
	s.WaitDelivery(id, "accepte", "sent", time.Minute)

	var before, bulk int
	if err := s.Pool.QueryRow(t.Context(), `
		SELECT count(*) FILTER (WHERE b.sent_at < a.sent_at), count(*)
		FROM email_deliveries b, email_deliveries a
		WHERE b.kind IN ('stale_usager', 'stale_instructeur') AND a.dossier_id = $1 AND a.kind = 'accepte'`, id,
	).Scan(&before, &bulk); err != nil {
		t.Fatal(err)
	}
	t.Logf("the acceptance went out after %d of the %d bulk e-mails queued before it", before, bulk)
	if bulk != reminders+1 || before > bulk/2 {
		t.Fatalf("the acceptance went out after %d of the %d bulk e-mails queued before it, more than half", before, bulk)
	}
	msgs := s.Mailpit.WaitFor(t, "to:"+usager+" subject:accepté", 1, 10*time.Second)
	if m, err := s.Mailpit.Message(t.Context(), msgs[0].ID); err != nil || len(m.Attachments) != 1 {
		t.Fatalf("acceptance e-mail: %v, %v", m, err)
	}
}

// TestBulkPaced: under SMTP_MAX_RATE, a bulk e-mail whose turn is further
// than a few seconds away waits snoozed, without spending an attempt, while
// transactional e-mails queued after it go out. At 0.05 a second, one of the
// five bulk e-mails goes, the four others wait their turn, 20 s apart.
func TestBulkPaced(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Jobs: jobs.Config{BulkRate: 0.05}})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	bulkBacklog(t, s, proc, 4)
	var ids []int64
	for range 3 {
		id, _ := s.Dossier(proc)
		s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
		ids = append(ids, id)
	}
	for _, id := range ids {
		s.WaitDelivery(id, "en_instruction", "sent", 30*time.Second)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var sent, waiting, spent int
		if err := s.Pool.QueryRow(t.Context(), `
			SELECT count(*) FILTER (WHERE e.status = 'sent'),
				count(*) FILTER (WHERE e.status = 'pending' AND e.attempts = 0 AND j.state = 'scheduled'
					AND j.scheduled_at > now() + interval '5 seconds' AND (j.metadata->>'snoozes')::int >= 1),
				count(*) FILTER (WHERE j.attempt > 1 OR j.queue <> $1)
			FROM email_deliveries e JOIN river_job j ON j.kind = 'send_email' AND (j.args->>'delivery_id')::bigint = e.id
			WHERE e.kind IN ('stale_usager', 'stale_instructeur')`, jobs.QueueEmailBulk,
		).Scan(&sent, &waiting, &spent); err != nil {
			t.Fatal(err)
		}
		if sent > 1 || spent > 0 {
			t.Fatalf("%d bulk e-mails sent at 0.05 a second, %d jobs spent an attempt or are on another queue", sent, spent)
		}
		if sent == 1 && waiting == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bulk e-mails: %d sent, %d snoozed; want 1 and 4", sent, waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
