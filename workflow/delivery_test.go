package workflow_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/workflow"
)

// setupClock starts a stack without workers whose Service's clock stands
// still at now, with a procedure and an instructeur on it.
func setupClock(t *testing.T) (s *apptest.Stack, now time.Time, proc int64, inst string) {
	t.Helper()
	now = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	s = apptest.Start(t, apptest.Options{NoWorkers: true, Now: func() time.Time { return now }})
	proc = s.Procedure()
	return s, now, proc, s.Instructeur(proc, "Camille Martin")
}

// TestDeliveryLog: what the send_email job records of a delivery, through
// the Service: attempts that stay pending, the final failure, the success
// at the Service's clock, the cancellation of a pending delivery only. A
// server reply longer than the column's bound, cut in the middle of a
// character or holding bytes PostgreSQL refuses, is still recorded.
func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	s, now, proc, inst := setupClock(t)
	ctx := t.Context()
	delivery := func(t *testing.T) int64 {
		t.Helper()
		id, _ := s.Dossier(proc)
		if _, err := s.Service.Transition(ctx, id, workflow.Command{Event: workflow.PasserEnInstruction, Instructeur: inst}); err != nil {
			t.Fatal(err)
		}
		var did int64
		if err := s.Pool.QueryRow(ctx, `SELECT id FROM email_deliveries WHERE dossier_id = $1`, id).Scan(&did); err != nil {
			t.Fatal(err)
		}
		return did
	}
	type row struct {
		status    string
		attempts  int
		lastError *string
		messageID *string
		sentAt    *time.Time
	}
	read := func(t *testing.T, id int64) row {
		t.Helper()
		var r row
		if err := s.Pool.QueryRow(ctx, `SELECT status, attempts, last_error, message_id, sent_at FROM email_deliveries WHERE id = $1`, id).
			Scan(&r.status, &r.attempts, &r.lastError, &r.messageID, &r.sentAt); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Message-IDs are unique: the delivery's id makes them so.
	mid := func(id int64) string { return fmt.Sprintf("aptflow.delivery.%d@aptflow.test", id) }

	t.Run("AttemptsThenSent", func(t *testing.T) {
		id := delivery(t)
		if err := s.Service.MarkDeliveryAttempt(ctx, id, mid(id), "451 4.3.0 try later"); err != nil {
			t.Fatal(err)
		}
		if r := read(t, id); r.status != workflow.DeliveryPending || r.attempts != 1 || *r.lastError != "451 4.3.0 try later" || *r.messageID != mid(id) {
			t.Fatalf("after an attempt: %+v", r)
		}
		if err := s.Service.MarkDeliverySent(ctx, id, mid(id)); err != nil {
			t.Fatal(err)
		}
		r := read(t, id)
		if r.status != workflow.DeliverySent || r.attempts != 2 || r.lastError != nil || r.sentAt == nil || !r.sentAt.Equal(now) {
			t.Fatalf("after sending: %+v (sent_at %v, want the Service's clock %v)", r, r.sentAt, now)
		}
		// A cancellation comes too late for an e-mail already sent.
		if err := s.Service.CancelDelivery(ctx, id); err != nil {
			t.Fatal(err)
		}
		if r := read(t, id); r.status != workflow.DeliverySent {
			t.Fatalf("sent e-mail cancelled: %+v", r)
		}
	})
	t.Run("Failed", func(t *testing.T) {
		id := delivery(t)
		if err := s.Service.MarkDeliveryFailed(ctx, id, mid(id), "550 5.1.1 no such user"); err != nil {
			t.Fatal(err)
		}
		if r := read(t, id); r.status != workflow.DeliveryFailed || r.attempts != 1 || *r.lastError != "550 5.1.1 no such user" {
			t.Fatalf("after a 550: %+v", r)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		id := delivery(t)
		if err := s.Service.CancelDelivery(ctx, id); err != nil {
			t.Fatal(err)
		}
		if r := read(t, id); r.status != workflow.DeliveryCancelled || r.attempts != 0 {
			t.Fatalf("after cancelling: %+v", r)
		}
	})
	t.Run("LongReply", func(t *testing.T) {
		// Byte 1000 is the middle of « é »: cut there, the text would not
		// be UTF-8, and PostgreSQL would refuse the whole UPDATE.
		reply := "550 " + strings.Repeat("x", workflow.MaxLastErrorLen-5) + "éé\x00\xff suite"
		id := delivery(t)
		if err := s.Service.MarkDeliveryFailed(ctx, id, mid(id), reply); err != nil {
			t.Fatal(err)
		}
		r := read(t, id)
		if r.status != workflow.DeliveryFailed || r.lastError == nil {
			t.Fatalf("after a long reply: %+v", r)
		}
		if n := utf8.RuneCountInString(*r.lastError); n != workflow.MaxLastErrorLen || !strings.HasSuffix(*r.lastError, "xé") {
			t.Fatalf("last_error: %d characters, ending %q", n, (*r.lastError)[len(*r.lastError)-4:])
		}
	})
}

// TestStoreAttestation: the first PDF stored is the attestation, with its
// sha256, whether it is signed and the Service's time; a second one (a
// retried render, signed again at another time) changes nothing.
func TestStoreAttestation(t *testing.T) {
	t.Parallel()
	s, now, proc, inst := setupClock(t)
	ctx := t.Context()
	id, _ := s.Dossier(proc)
	for _, e := range []workflow.Event{workflow.PasserEnInstruction, workflow.Accepter} {
		if _, err := s.Service.Transition(ctx, id, workflow.Command{Event: e, Instructeur: inst}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Service.AttestationPDF(ctx, id); workflow.ErrorCode(err) != workflow.ENotFound {
		t.Fatalf("before rendering: %v", err)
	}
	first, second := []byte("%PDF-1.7 first"), []byte("%PDF-1.7 second")
	for i, pdf := range [][]byte{first, second} {
		stored, err := s.Service.StoreAttestation(ctx, id, pdf, i == 0)
		if err != nil || stored != (i == 0) {
			t.Fatalf("store #%d: stored %v, %v", i+1, stored, err)
		}
	}
	pdf, sum, err := s.Service.AttestationPDF(ctx, id)
	if err != nil || string(pdf) != string(first) {
		t.Fatalf("attestation %q, %v", pdf, err)
	}
	var renderedAt time.Time
	var signed bool
	if err := s.Pool.QueryRow(ctx, `SELECT rendered_at, signed FROM attestations WHERE dossier_id = $1`, id).Scan(&renderedAt, &signed); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(first)
	if sum != hex.EncodeToString(want[:]) || !renderedAt.Equal(now) || !signed {
		t.Fatalf("sha256 %q, rendered_at %v, signed %v", sum, renderedAt, signed)
	}
}
