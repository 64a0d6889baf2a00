package jobs_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// TestInstructionEmail: a transition → a River job → mailpit receives a
// French e-mail, text and HTML, with the dossier number in its subject.
func TestInstructionEmail(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, usager := s.Dossier(proc)

	if r := s.Event(id, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
		t.Fatalf("event: %d %s", r.StatusCode, r.Body)
	}
	msgs := s.Mailpit.WaitFor(t, "to:"+usager, 1, 20*time.Second)
	m, err := s.Mailpit.Message(t.Context(), msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	num := fmt.Sprint(id)
	if !strings.Contains(m.Subject, num) || !strings.Contains(m.Subject, "examiné") {
		t.Errorf("subject %q", m.Subject)
	}
	for _, part := range []string{m.Text, m.HTML} {
		for _, want := range []string{num, "Élodie Dupré", "ne pouvez plus le modifier", "Préfecture du Rhône"} {
			if !strings.Contains(part, want) {
				t.Errorf("body lacks %q:\n%s", want, part)
			}
		}
	}
	if !strings.Contains(m.MessageID, ".delivery.") || !strings.HasSuffix(m.MessageID, "@aptflow.test") {
		t.Errorf("Message-ID %q", m.MessageID)
	}
	e := s.WaitDelivery(id, "en_instruction", "sent", 10*time.Second)
	if e["to"] != usager || e["attempts"] != float64(1) || e["sent_at"] == nil || e["last_error"] != nil {
		t.Errorf("delivery %v", e)
	}

	t.Run("RepasserEnConstruction", func(t *testing.T) {
		if r := s.Event(id, "repasser_en_construction", inst, ""); r.StatusCode != 200 {
			t.Fatalf("event: %d %s", r.StatusCode, r.Body)
		}
		msgs := s.Mailpit.WaitFor(t, "to:"+usager+" subject:modifiable", 1, 20*time.Second)
		if !strings.Contains(msgs[0].Subject, num) {
			t.Errorf("subject %q", msgs[0].Subject)
		}
	})
	t.Run("NoPersonalDataInLogs", func(t *testing.T) {
		logs := s.Logs.String()
		for _, pd := range []string{"Dupré", "Élodie", usager, inst, "Camille"} {
			if strings.Contains(logs, pd) {
				t.Errorf("logs contain %q", pd)
			}
		}
	})
}

func TestDisableNotification(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, usager := s.Dossier(proc)
	r := s.Do("POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{
		"event": "passer_en_instruction", "instructeur": inst, "disable_notification": true})
	if r.StatusCode != 200 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	// A later e-mail proves the workers ran meanwhile.
	other, otherUsager := s.Dossier(proc)
	s.Event(other, "passer_en_instruction", inst, "")
	s.Mailpit.WaitFor(t, "to:"+otherUsager, 1, 20*time.Second)
	if n, err := s.Mailpit.Count(t.Context(), "to:"+usager); err != nil || n != 0 {
		t.Fatalf("e-mails despite disable_notification: %d %v", n, err)
	}
	if d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil); len(d["emails"].([]any)) != 0 {
		t.Fatalf("delivery log %v", d["emails"])
	}
}

// TestSMTPTemporaryFailure: 451 at MAIL FROM, then the server recovers: the
// e-mail is delivered once, on a later attempt.
func TestSMTPTemporaryFailure(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, usager := s.Dossier(proc)
	if err := s.Mailpit.SetChaos(t.Context(), mailpittest.ChaosTriggers{Sender: mailpittest.ChaosTrigger{ErrorCode: 451, Probability: 100}}); err != nil {
		t.Fatal(err)
	}
	s.Event(id, "passer_en_instruction", inst, "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil)
		e := d["emails"].([]any)[0].(map[string]any)
		if e["attempts"].(float64) >= 1 {
			if e["status"] != "pending" || !strings.Contains(fmt.Sprint(e["last_error"]), "451") {
				t.Fatalf("after a 451: %v", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt recorded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Mailpit.SetChaos(t.Context(), mailpittest.ChaosTriggers{}); err != nil {
		t.Fatal(err)
	}
	e := s.WaitDelivery(id, "en_instruction", "sent", 30*time.Second)
	if e["attempts"].(float64) < 2 || e["last_error"] != nil {
		t.Fatalf("delivery %v", e)
	}
	s.Mailpit.WaitFor(t, "to:"+usager, 1, 10*time.Second)
	if n, _ := s.Mailpit.Count(t.Context(), "to:"+usager); n != 1 {
		t.Fatalf("%d e-mails, want 1", n)
	}
}

// TestSMTPPermanentFailure: 550 at RCPT: the delivery is failed with the
// server's reply, the job cancelled, and nothing retried.
func TestSMTPPermanentFailure(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	if err := s.Mailpit.SetChaos(t.Context(), mailpittest.ChaosTriggers{Recipient: mailpittest.ChaosTrigger{ErrorCode: 550, Probability: 100}}); err != nil {
		t.Fatal(err)
	}
	s.Event(id, "passer_en_instruction", inst, "")
	e := s.WaitDelivery(id, "en_instruction", "failed", 20*time.Second)
	if e["attempts"] != float64(1) || !strings.Contains(fmt.Sprint(e["last_error"]), "550") {
		t.Fatalf("delivery %v", e)
	}
	var state string
	var attempt int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := s.Pool.QueryRow(t.Context(), `SELECT state, attempt FROM river_job WHERE kind = 'send_email'`).Scan(&state, &attempt); err != nil {
			t.Fatal(err)
		}
		if state != "running" || time.Now().After(deadline) {
			break
		}
	}
	if state != "cancelled" || attempt != 1 {
		t.Fatalf("job %s after %d attempts", state, attempt)
	}
	time.Sleep(time.Second)
	if e := s.WaitDelivery(id, "en_instruction", "failed", time.Second); e["attempts"] != float64(1) {
		t.Fatalf("retried: %v", e)
	}
}
