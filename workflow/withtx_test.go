package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/workflow"
)

// querier is what a pool and a transaction share, for snapshots.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// snapshot returns a digest of every table's rows (River's included), by
// table, as q sees them.
func snapshot(t *testing.T, ctx context.Context, q querier) map[string]string {
	t.Helper()
	rows, err := q.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]string, len(tables))
	for i, name := range tables {
		parts[i] = fmt.Sprintf(`SELECT '%s', md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t`,
			strings.ReplaceAll(name, "'", "''"), pgx.Identifier{name}.Sanitize())
	}
	rows, err = q.Query(ctx, strings.Join(parts, " UNION ALL "))
	if err != nil {
		t.Fatal(err)
	}
	snap := map[string]string{}
	for rows.Next() {
		var name, digest string
		if err := rows.Scan(&name, &digest); err != nil {
			t.Fatal(err)
		}
		snap[name] = digest
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return snap
}

// changed lists the tables whose digest differs between a and b.
func changed(a, b map[string]string) []string {
	var names []string
	for name := range maps.Keys(a) {
		if a[name] != b[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// TestEveryMethodUnderWithTx: every method of the Service that writes, in
// both its forms, writes only in the caller's transaction: what it wrote
// is visible in that transaction, invisible outside it until it commits,
// and gone once it rolls back. The methods that read see what the
// caller's transaction wrote. A new method of the Service fails the test
// until it is listed here.
func TestEveryMethodUnderWithTx(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	svc := s.Service
	ctx := t.Context()
	proc := s.Procedure()
	instA := s.Instructeur(proc, "Camille Martin")
	instB := s.Instructeur(proc, "Dominique Petit")
	instC := s.Instructeur(proc, "Sacha Bernard") // only SetPreferences touches C
	// A subscription to every event: each change below writes its
	// webhook event and delivery too (nothing is sent: no worker runs).
	hook, err := svc.CreateWebhook(ctx, proc, workflow.WebhookInput{URL: "http://127.0.0.1:9/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	enConstruction, _ := s.Dossier(proc)
	enInstruction, _ := s.Dossier(proc)
	accepte, _ := s.Dossier(proc)
	for _, id := range []int64{enInstruction, accepte} {
		s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": instA})
	}
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", accepte), map[string]any{"event": "accepter", "instructeur": instA})
	var delivery int64
	var code string
	if err := s.Pool.QueryRow(ctx, `SELECT id FROM email_deliveries WHERE dossier_id = $1`, enInstruction).Scan(&delivery); err != nil {
		t.Fatal(err)
	}
	if err := s.Pool.QueryRow(ctx, `SELECT code FROM attestations WHERE dossier_id = $1`, accepte).Scan(&code); err != nil {
		t.Fatal(err)
	}
	dem, _ := json.Marshal(apptest.Demandeur())
	newDossier := workflow.DossierInput{ProcedureID: proc, UsagerEmail: "withtx@etudiant.test", Demandeur: dem}
	newProcedure := workflow.ProcedureInput{Libelle: "APT", Service: workflow.ProcedureService{Nom: "Préfecture de l'Ain", Adresse: "Bourg"},
		StaleAfterDays: 30, HeuresHebdoMax: 20}
	patch := json.RawMessage(`{"emploi": "serveuse"}`)
	accepter := workflow.Command{Event: workflow.Accepter, Instructeur: instA}
	pdf := []byte("%PDF-1.7 attestation")
	const mid = "aptflow.delivery.1@aptflow.test"
	yearOn := time.Now().AddDate(1, 0, 0)
	var instAID int64
	if err := s.Pool.QueryRow(ctx, `SELECT id FROM instructeurs WHERE email = $1`, instA).Scan(&instAID); err != nil {
		t.Fatal(err)
	}
	var hookDelivery int64
	if err := s.Pool.QueryRow(ctx, `SELECT min(id) FROM webhook_deliveries WHERE subscription_id = $1`, hook.ID).Scan(&hookDelivery); err != nil {
		t.Fatal(err)
	}
	newHook := workflow.WebhookInput{URL: "http://127.0.0.1:9/autre", Events: []string{workflow.WebhookDossierCreated}}
	delivered := workflow.WebhookAttempt{StatusCode: 200}
	// The purge's runs: ten days before the dossiers' conservation (12
	// months) ends, every dossier but the one en instruction is to be
	// announced; a month after, to be purged. An idempotency key to forget.
	noticeRun := func() *workflow.PurgeRun { return workflow.NewPurgeRun(time.Now().AddDate(1, 0, -10)) }
	purgeRun := func() *workflow.PurgeRun { return workflow.NewPurgeRun(time.Now().AddDate(1, 1, 0)) }
	s.Must(201, "POST", "/v1/procedures", newProcedure, "Idempotency-Key", "withtx")
	extend := workflow.ConservationInput{Instructeur: instA, Mois: 1}
	purged := func(ctx context.Context, tx pgx.Tx) error {
		n, _, err := svc.PurgeExpiredTx(ctx, tx, purgeRun(), 100)
		if err == nil && n == 0 {
			err = errors.New("no dossier purged")
		}
		return err
	}

	// Each writes something, called with a context that carries the
	// caller's tx (WithTx) or, for the Tx forms, with tx itself.
	writes := map[string]func(ctx context.Context, tx pgx.Tx) error{
		"CreateProcedure": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.CreateProcedure(ctx, newProcedure)
			return err
		},
		"CreateProcedureTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.CreateProcedureTx(ctx, tx, newProcedure)
			return err
		},
		"AddInstructeur": func(ctx context.Context, _ pgx.Tx) error {
			_, _, err := svc.AddInstructeur(ctx, proc, "nouveau@prefecture.test", "Noa")
			return err
		},
		"AddInstructeurTx": func(ctx context.Context, tx pgx.Tx) error {
			_, _, err := svc.AddInstructeurTx(ctx, tx, proc, "nouveau@prefecture.test", "Noa")
			return err
		},
		"CreateDossier": func(ctx context.Context, _ pgx.Tx) error { _, err := svc.CreateDossier(ctx, newDossier); return err },
		"CreateDossierTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.CreateDossierTx(ctx, tx, newDossier)
			return err
		},
		"UpdateDemandeur": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.UpdateDemandeur(ctx, enConstruction, patch)
			return err
		},
		"UpdateDemandeurTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.UpdateDemandeurTx(ctx, tx, enConstruction, patch)
			return err
		},
		"Transition": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.Transition(ctx, enInstruction, accepter)
			return err
		},
		"TransitionTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.TransitionTx(ctx, tx, enInstruction, accepter)
			return err
		},
		"Follow":     func(ctx context.Context, _ pgx.Tx) error { return svc.Follow(ctx, enConstruction, instB) },
		"FollowTx":   func(ctx context.Context, tx pgx.Tx) error { return svc.FollowTx(ctx, tx, enConstruction, instB) },
		"Unfollow":   func(ctx context.Context, _ pgx.Tx) error { return svc.Unfollow(ctx, enInstruction, instA) },
		"UnfollowTx": func(ctx context.Context, tx pgx.Tx) error { return svc.UnfollowTx(ctx, tx, enInstruction, instA) },
		"PostMessage": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.PostMessage(ctx, enConstruction, instA, "Bonjour")
			return err
		},
		"PostMessageTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.PostMessageTx(ctx, tx, enConstruction, instA, "Bonjour")
			return err
		},
		"PostAvis": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.PostAvis(ctx, enConstruction, "expert@direccte.test", "Favorable")
			return err
		},
		"PostAvisTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.PostAvisTx(ctx, tx, enConstruction, "expert@direccte.test", "Favorable")
			return err
		},
		"SetPreferences": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.SetPreferences(ctx, instC, workflow.NotifyDaily)
			return err
		},
		"SetPreferencesTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.SetPreferencesTx(ctx, tx, instC, workflow.NotifyDaily)
			return err
		},
		"StoreAttestation": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.StoreAttestation(ctx, accepte, pdf, false)
			return err
		},
		"StoreAttestationTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.StoreAttestationTx(ctx, tx, accepte, pdf, false)
			return err
		},
		"MarkDeliverySent":   func(ctx context.Context, _ pgx.Tx) error { return svc.MarkDeliverySent(ctx, delivery, mid) },
		"MarkDeliverySentTx": func(ctx context.Context, tx pgx.Tx) error { return svc.MarkDeliverySentTx(ctx, tx, delivery, mid) },
		"MarkDeliveryAttempt": func(ctx context.Context, _ pgx.Tx) error {
			return svc.MarkDeliveryAttempt(ctx, delivery, mid, "451 try later")
		},
		"MarkDeliveryAttemptTx": func(ctx context.Context, tx pgx.Tx) error {
			return svc.MarkDeliveryAttemptTx(ctx, tx, delivery, mid, "451 try later")
		},
		"MarkDeliveryFailed": func(ctx context.Context, _ pgx.Tx) error {
			return svc.MarkDeliveryFailed(ctx, delivery, mid, "550 no such user")
		},
		"MarkDeliveryFailedTx": func(ctx context.Context, tx pgx.Tx) error {
			return svc.MarkDeliveryFailedTx(ctx, tx, delivery, mid, "550 no such user")
		},
		// The background work's writes: the stale scan (a year on, every
		// dossier en construction is stale), a follower's notification
		// and an instructeur's digest of a message posted in the same
		// transaction.
		"BeginStaleScan": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.BeginStaleScan(ctx, yearOn)
			return err
		},
		"FlagStaleTx": func(ctx context.Context, tx pgx.Tx) error {
			scan, err := svc.BeginStaleScan(ctx, yearOn)
			if err != nil {
				return err
			}
			reminders, _, err := svc.FlagStaleTx(ctx, tx, scan, 100)
			if err == nil && len(reminders) == 0 {
				err = errors.New("no dossier flagged")
			}
			return err
		},
		"FinishStaleScanTx": func(ctx context.Context, tx pgx.Tx) error {
			scan, err := svc.BeginStaleScan(ctx, yearOn)
			if err != nil {
				return err
			}
			if _, _, err := svc.FlagStaleTx(ctx, tx, scan, 100); err != nil {
				return err
			}
			_, listed, err := svc.FinishStaleScanTx(ctx, tx, scan.At)
			if err == nil && listed == 0 {
				err = errors.New("no dossier listed")
			}
			return err
		},
		"NotifyFollowerTx": func(ctx context.Context, tx pgx.Tx) error {
			if _, err := svc.PostMessageTx(ctx, tx, enInstruction, "usager", "Bonjour"); err != nil {
				return err
			}
			id, err := svc.NotifyFollowerTx(ctx, tx, enInstruction, instAID)
			if err == nil && id == 0 {
				err = errors.New("no notification")
			}
			return err
		},
		"DigestTx": func(ctx context.Context, tx pgx.Tx) error {
			if _, err := svc.SetPreferencesTx(ctx, tx, instA, workflow.NotifyDaily); err != nil {
				return err
			}
			if _, err := svc.PostMessageTx(ctx, tx, enInstruction, "usager", "Bonjour"); err != nil {
				return err
			}
			id, _, err := svc.DigestTx(ctx, tx, instAID, yearOn)
			if err == nil && id == 0 {
				err = errors.New("no digest")
			}
			return err
		},
		"CreateWebhook": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.CreateWebhook(ctx, proc, newHook)
			return err
		},
		"CreateWebhookTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.CreateWebhookTx(ctx, tx, proc, newHook)
			return err
		},
		"DeleteWebhook":   func(ctx context.Context, _ pgx.Tx) error { return svc.DeleteWebhook(ctx, proc, hook.ID) },
		"DeleteWebhookTx": func(ctx context.Context, tx pgx.Tx) error { return svc.DeleteWebhookTx(ctx, tx, proc, hook.ID) },
		"RotateWebhookSecret": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.RotateWebhookSecret(ctx, proc, hook.ID)
			return err
		},
		"RotateWebhookSecretTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.RotateWebhookSecretTx(ctx, tx, proc, hook.ID)
			return err
		},
		// A delivered delivery sent again: pending again, its job back.
		"RetryWebhookDelivery": func(ctx context.Context, tx pgx.Tx) error {
			if err := svc.RecordWebhookAttemptTx(ctx, tx, hookDelivery, delivered); err != nil {
				return err
			}
			_, err := svc.RetryWebhookDelivery(ctx, proc, hook.ID, hookDelivery)
			return err
		},
		"RetryWebhookDeliveryTx": func(ctx context.Context, tx pgx.Tx) error {
			if err := svc.RecordWebhookAttemptTx(ctx, tx, hookDelivery, delivered); err != nil {
				return err
			}
			_, err := svc.RetryWebhookDeliveryTx(ctx, tx, proc, hook.ID, hookDelivery)
			return err
		},
		"RecordWebhookAttempt": func(ctx context.Context, _ pgx.Tx) error {
			return svc.RecordWebhookAttempt(ctx, hookDelivery, delivered)
		},
		"RecordWebhookAttemptTx": func(ctx context.Context, tx pgx.Tx) error {
			return svc.RecordWebhookAttemptTx(ctx, tx, hookDelivery, delivered)
		},
		"WebhookGone":   func(ctx context.Context, _ pgx.Tx) error { return svc.WebhookGone(ctx, hookDelivery) },
		"WebhookGoneTx": func(ctx context.Context, tx pgx.Tx) error { return svc.WebhookGoneTx(ctx, tx, hookDelivery) },
		"AbandonWebhookDelivery": func(ctx context.Context, _ pgx.Tx) error {
			return svc.AbandonWebhookDelivery(ctx, hookDelivery, "subscription deleted")
		},
		"AbandonWebhookDeliveryTx": func(ctx context.Context, tx pgx.Tx) error {
			return svc.AbandonWebhookDeliveryTx(ctx, tx, hookDelivery, "subscription deleted")
		},
		// The data lifecycle's: an extension, the purge's notices, its
		// tombstones and the idempotency keys it forgets.
		"ExtendConservation": func(ctx context.Context, _ pgx.Tx) error {
			_, err := svc.ExtendConservation(ctx, accepte, extend)
			return err
		},
		"ExtendConservationTx": func(ctx context.Context, tx pgx.Tx) error {
			_, err := svc.ExtendConservationTx(ctx, tx, accepte, extend)
			return err
		},
		"NoticeExpiringTx": func(ctx context.Context, tx pgx.Tx) error {
			notices, _, err := svc.NoticeExpiringTx(ctx, tx, noticeRun(), 100)
			if err == nil && len(notices) == 0 {
				err = errors.New("no notice")
			}
			return err
		},
		"PurgeExpiredTx": purged,
		"ForgetIdempotencyKeysTx": func(ctx context.Context, tx pgx.Tx) error {
			n, _, err := svc.ForgetIdempotencyKeysTx(ctx, tx, yearOn, 100)
			if err == nil && n == 0 {
				err = errors.New("no key forgotten")
			}
			return err
		},
		"CancelDelivery":   func(ctx context.Context, _ pgx.Tx) error { return svc.CancelDelivery(ctx, delivery) },
		"CancelDeliveryTx": func(ctx context.Context, tx pgx.Tx) error { return svc.CancelDeliveryTx(ctx, tx, delivery) },
	}
	// Each reads, in the caller's transaction, what it wrote there.
	reads := map[string]func(ctx context.Context, tx pgx.Tx) error{
		"GetProcedure": func(ctx context.Context, tx pgx.Tx) error {
			p, err := svc.CreateProcedureTx(ctx, tx, newProcedure)
			if err != nil {
				return err
			}
			_, err = svc.GetProcedure(ctx, p.ID)
			return err
		},
		"GetDossier": func(ctx context.Context, tx pgx.Tx) error {
			d, err := svc.CreateDossierTx(ctx, tx, newDossier)
			if err != nil {
				return err
			}
			_, err = svc.GetDossier(ctx, d.ID)
			return err
		},
		"ListForInstructeur": func(ctx context.Context, tx pgx.Tx) error {
			if _, _, err := svc.AddInstructeurTx(ctx, tx, proc, "nouveau@prefecture.test", "Noa"); err != nil {
				return err
			}
			list, err := svc.ListForInstructeur(ctx, "nouveau@prefecture.test", workflow.ListFilter{Tab: workflow.TabTous})
			if err == nil && len(list) != 3 {
				err = fmt.Errorf("%d dossiers listed, want 3", len(list))
			}
			return err
		},
		"AttestationPDF": func(ctx context.Context, tx pgx.Tx) error {
			if _, err := svc.StoreAttestationTx(ctx, tx, accepte, pdf, false); err != nil {
				return err
			}
			_, _, err := svc.AttestationPDF(ctx, accepte)
			return err
		},
		"DailyInstructeurs": func(ctx context.Context, tx pgx.Tx) error {
			if _, err := svc.SetPreferencesTx(ctx, tx, instA, workflow.NotifyDaily); err != nil {
				return err
			}
			ids, err := svc.DailyInstructeurs(ctx, 0, 100)
			if err == nil && !slices.Contains(ids, instAID) {
				err = fmt.Errorf("daily instructeurs %v: the one set daily in the transaction is missing", ids)
			}
			return err
		},
		"ListWebhooks": func(ctx context.Context, tx pgx.Tx) error {
			if _, err := svc.CreateWebhookTx(ctx, tx, proc, newHook); err != nil {
				return err
			}
			list, err := svc.ListWebhooks(ctx, proc)
			if err == nil && len(list) != 2 {
				err = fmt.Errorf("%d webhooks listed, want 2", len(list))
			}
			return err
		},
		"ListWebhookDeliveries": func(ctx context.Context, tx pgx.Tx) error {
			if err := svc.RecordWebhookAttemptTx(ctx, tx, hookDelivery, delivered); err != nil {
				return err
			}
			list, err := svc.ListWebhookDeliveries(ctx, proc, hook.ID, workflow.WebhookDeliveryFilter{Status: workflow.WebhookDelivered})
			if err == nil && len(list) != 1 {
				err = fmt.Errorf("%d deliveries listed, want the one delivered in the transaction", len(list))
			}
			return err
		},
		"WebhookSend": func(ctx context.Context, tx pgx.Tx) error {
			d, err := svc.CreateDossierTx(ctx, tx, newDossier)
			if err != nil {
				return err
			}
			var id int64
			if err := tx.QueryRow(ctx, `SELECT d.id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
				WHERE e.data->>'dossier_id' = $1`, fmt.Sprint(d.ID)).Scan(&id); err != nil {
				return err
			}
			_, err = svc.WebhookSend(ctx, id)
			return err
		},
		"Tombstone": func(ctx context.Context, tx pgx.Tx) error {
			if err := purged(ctx, tx); err != nil {
				return err
			}
			t, err := svc.Tombstone(ctx, accepte)
			if err == nil && t == nil {
				err = errors.New("the dossier purged in the transaction has no tombstone")
			}
			return err
		},
		"ListDeleted": func(ctx context.Context, tx pgx.Tx) error {
			if err := purged(ctx, tx); err != nil {
				return err
			}
			list, err := svc.ListDeleted(ctx, proc, workflow.DeletedFilter{})
			if err == nil && len(list) != 2 {
				err = fmt.Errorf("%d tombstones, want 2", len(list))
			}
			return err
		},
		"VerifyAttestation": func(ctx context.Context, tx pgx.Tx) error {
			if _, err := svc.StoreAttestationTx(ctx, tx, accepte, pdf, false); err != nil {
				return err
			}
			_, err := svc.VerifyAttestation(ctx, code)
			return err
		},
		"CompareAttestation": func(ctx context.Context, tx pgx.Tx) error {
			if _, err := svc.StoreAttestationTx(ctx, tx, accepte, pdf, false); err != nil {
				return err
			}
			match, err := svc.CompareAttestation(ctx, code, pdf)
			if err == nil && !match {
				err = errors.New("the PDF stored in the transaction does not match")
			}
			return err
		},
	}
	notMethods := []string{"Pool", "PublicURL", "RetentionNotice"}

	t.Run("EveryMethodListed", func(t *testing.T) {
		typ := reflect.TypeFor[*workflow.Service]()
		for i := range typ.NumMethod() {
			name := typ.Method(i).Name
			if writes[name] == nil && reads[name] == nil && !slices.Contains(notMethods, name) {
				t.Errorf("Service.%s is not tested under WithTx", name)
			}
		}
	})

	before := snapshot(t, ctx, s.Pool)
	// run calls fn under WithTx in a transaction that it rolls back.
	run := func(t *testing.T, fn func(ctx context.Context, tx pgx.Tx) error, check func(inTx map[string]string)) {
		t.Helper()
		// A method that wrote through the pool to a row tx has locked
		// would wait forever: it fails here instead.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		tx, err := s.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
		txCtx, _ := workflow.WithTx(ctx, tx)
		if err := fn(txCtx, tx); err != nil {
			t.Fatal(err)
		}
		check(snapshot(t, ctx, tx))
		if c := changed(before, snapshot(t, ctx, s.Pool)); len(c) > 0 {
			t.Errorf("before the caller's commit, visible outside its transaction: %v", c)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if c := changed(before, snapshot(t, ctx, s.Pool)); len(c) > 0 {
			t.Errorf("after the caller's rollback, still changed: %v", c)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(writes)) {
		t.Run(name, func(t *testing.T) {
			run(t, writes[name], func(inTx map[string]string) {
				if len(changed(before, inTx)) == 0 {
					t.Error("wrote nothing in the caller's transaction")
				}
			})
		})
	}
	for _, name := range slices.Sorted(maps.Keys(reads)) {
		t.Run(name, func(t *testing.T) { run(t, reads[name], func(map[string]string) {}) })
	}
}
