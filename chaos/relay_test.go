package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/aptflow/aptflow/internal/mailpittest"
)

// TestRelay: the relay passes messages and mailpit's replies through, and
// injects its own faults: 550 for rejet-… recipients, a connection cut in
// the middle of DATA that leaves nothing in mailpit.
func TestRelay(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	r, err := startRelay(mp.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	send := func(to, id string) error {
		c, err := smtp.Dial(r.addr)
		if err != nil {
			return err
		}
		defer c.Close()
		msg := "Message-ID: <" + id + ">\r\nSubject: test\r\n\r\n" + strings.Repeat("corps du message\r\n", 500)
		return c.SendMail("aptflow@chaos.localhost", []string{to}, strings.NewReader(msg))
	}
	var se *smtp.SMTPError

	if err := send("elodie@etudiant.chaos.localhost", "a.1@chaos.localhost"); err != nil {
		t.Fatalf("through: %v", err)
	}
	if _, ok := r.storedAt("a.1@chaos.localhost"); !ok {
		t.Error("the relayed message is not recorded")
	}
	if err := send("rejet-1@etudiant.chaos.localhost", "a.2@chaos.localhost"); !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("refused recipient: %v, want a 550", err)
	}
	if err := mp.SetChaos(t.Context(), mailpittest.ChaosTriggers{Sender: mailpittest.ChaosTrigger{ErrorCode: 451, Probability: 100}}); err != nil {
		t.Fatal(err)
	}
	if err := send("elodie@etudiant.chaos.localhost", "a.3@chaos.localhost"); !errors.As(err, &se) || se.Code != 451 {
		t.Errorf("mailpit's chaos: %v, want its 451", err)
	}
	if err := mp.SetChaos(t.Context(), mailpittest.ChaosTriggers{}); err != nil {
		t.Fatal(err)
	}
	r.dropping.Store(true)
	if err := send("elodie@etudiant.chaos.localhost", "a.4@chaos.localhost"); err == nil || errors.As(err, &se) {
		t.Errorf("dropped during DATA: %v, want a broken connection", err)
	}
	r.dropping.Store(false)
	if r.dropped.Load() != 1 || r.rejected.Load() != 1 {
		t.Errorf("%d dropped, %d rejected; want 1, 1", r.dropped.Load(), r.rejected.Load())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs, err := mp.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].MessageID != "a.1@chaos.localhost" {
		t.Errorf("mailpit holds %+v, want the first message only", msgs)
	}
}
