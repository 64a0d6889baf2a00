package workflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/workflow"
)

// TestCursorsTx: the notification and digest cursors move in the job's
// transaction, with the delivery they write: rolled back, the activity is
// told again; committed, it is told once, to the follower who did not write
// it, in the mode they chose.
func TestCursorsTx(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	ctx := t.Context()
	proc := s.Procedure()
	a := s.Instructeur(proc, "Camille Martin")
	b := s.Instructeur(proc, "Dominique Petit")
	id, _ := s.Dossier(proc)
	for _, inst := range []string{a, b} {
		if err := s.Service.Follow(ctx, id, inst); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Service.SetPreferences(ctx, b, workflow.NotifyDaily); err != nil {
		t.Fatal(err)
	}
	instID := func(email string) int64 {
		var n int64
		if err := s.Pool.QueryRow(ctx, `SELECT id FROM instructeurs WHERE email = $1`, email).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	aID, bID := instID(a), instID(b)
	m1, err := s.Service.PostMessage(ctx, id, workflow.FromUsager, "Voici mon contrat.")
	if err != nil {
		t.Fatal(err)
	}
	own, err := s.Service.PostMessage(ctx, id, a, "Merci, je regarde.")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s.Service.PostMessage(ctx, id, workflow.FromUsager, "Et la promesse d'embauche.")
	if err != nil {
		t.Fatal(err)
	}

	// inTx runs fn in a transaction, committed or rolled back.
	inTx := func(t *testing.T, commit bool, fn func(pgx.Tx) error) {
		t.Helper()
		tx, err := s.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if err := fn(tx); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// delivery returns the kind, recipient and activity ids of a delivery.
	delivery := func(t *testing.T, did int64) (kind, to string, ids []int64) {
		t.Helper()
		if err := s.Pool.QueryRow(ctx, `
			SELECT kind, recipient, ARRAY(SELECT jsonb_array_elements_text(params->'activity_ids')::bigint)
			FROM email_deliveries WHERE id = $1`, did).Scan(&kind, &to, &ids); err != nil {
			t.Fatal(err)
		}
		return kind, to, ids
	}
	cursor := func(t *testing.T, inst int64) int64 {
		t.Helper()
		var n int64
		if err := s.Pool.QueryRow(ctx, `SELECT notified_through FROM follows WHERE dossier_id = $1 AND instructeur_id = $2`, id, inst).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	count := func(t *testing.T, kind string) int {
		t.Helper()
		var n int
		if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM email_deliveries WHERE kind = $1`, kind).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	notify := func(t *testing.T, commit bool, inst int64) (did int64) {
		t.Helper()
		inTx(t, commit, func(tx pgx.Tx) (err error) {
			did, err = s.Service.NotifyFollowerTx(ctx, tx, id, inst)
			return err
		})
		return did
	}
	digest := func(t *testing.T, commit bool, inst int64) (did int64, n int) {
		t.Helper()
		inTx(t, commit, func(tx pgx.Tx) (err error) {
			did, n, err = s.Service.DigestTx(ctx, tx, inst, time.Now())
			return err
		})
		return did, n
	}

	t.Run("NotifyRolledBack", func(t *testing.T) {
		if did := notify(t, false, aID); did == 0 {
			t.Fatal("no notification for a new activity")
		}
		if c, n := cursor(t, aID), count(t, workflow.MailNotification); c != 0 || n != 0 {
			t.Fatalf("rolled back: cursor %d, %d notifications", c, n)
		}
	})
	t.Run("NotifyCommitted", func(t *testing.T) {
		did := notify(t, true, aID)
		// a wrote own: not told of it, but the cursor passes it.
		if kind, to, ids := delivery(t, did); kind != workflow.MailNotification || to != a || !slices.Equal(ids, []int64{m1.ID, m2.ID}) {
			t.Fatalf("delivery %s to %s of %v, want a notification to %s of [%d %d]", kind, to, ids, a, m1.ID, m2.ID)
		}
		if c := cursor(t, aID); c != m2.ID {
			t.Fatalf("cursor %d, want %d (past %d)", c, m2.ID, own.ID)
		}
		if did := notify(t, true, aID); did != 0 {
			t.Fatalf("second run wrote delivery %d", did)
		}
	})
	t.Run("NotifyDailyFollower", func(t *testing.T) {
		if did := notify(t, true, bID); did != 0 || cursor(t, bID) != 0 {
			t.Fatalf("instant notification %d to a daily follower, cursor %d", did, cursor(t, bID))
		}
	})
	t.Run("DigestRolledBack", func(t *testing.T) {
		if did, n := digest(t, false, bID); did == 0 || n != 3 {
			t.Fatalf("digest %d of %d activities, want 3", did, n)
		}
		if c, n := cursor(t, bID), count(t, workflow.MailDigest); c != 0 || n != 0 {
			t.Fatalf("rolled back: cursor %d, %d digests", c, n)
		}
	})
	t.Run("DigestCommitted", func(t *testing.T) {
		did, _ := digest(t, true, bID)
		if kind, to, ids := delivery(t, did); kind != workflow.MailDigest || to != b || !slices.Equal(ids, []int64{m1.ID, own.ID, m2.ID}) {
			t.Fatalf("delivery %s to %s of %v", kind, to, ids)
		}
		if c := cursor(t, bID); c != m2.ID {
			t.Fatalf("cursor %d, want %d", c, m2.ID)
		}
		if did, n := digest(t, true, bID); did != 0 || n != 0 {
			t.Fatalf("second digest %d of %d activities", did, n)
		}
		if did, _ := digest(t, true, aID); did != 0 {
			t.Fatalf("digest %d to an instant follower", did)
		}
	})
	t.Run("DailyInstructeurs", func(t *testing.T) {
		ids, err := s.Service.DailyInstructeurs(ctx, 0, 10)
		if err != nil || !slices.Equal(ids, []int64{bID}) {
			t.Fatalf("DailyInstructeurs = %v, %v; want [%d]", ids, err, bID)
		}
		if ids, err := s.Service.DailyInstructeurs(ctx, bID, 10); err != nil || len(ids) != 0 {
			t.Fatalf("after %d: %v, %v", bID, ids, err)
		}
	})
}
