package mailer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/mailpittest"
)

// TestMailpit sends through a real SMTP server, with authentication, and
// reads the message back through mailpit's API. Without mailpit it fails
// with how to install it; it is never skipped.
func TestMailpit(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	ml, err := New(strings.Replace(mp.SMTPURL(), "smtp://", "smtp://aptflow:s3cret@", 1)+"?tls=none", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage("delivery-42@aptflow.example")
	// A retry of the same delivery: mailpit keeps both, with the same Message-ID.
	for range 2 {
		if err := ml.Send(t.Context(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	list := mp.WaitFor(t, "message-id:"+m.MessageID, 2, 10*time.Second)
	got := list[0]
	if len(list) != 2 || got.MessageID != m.MessageID || got.Subject != m.Subject || got.Attachments != 1 ||
		len(got.To) != 1 || got.To[0].Name != "Élodie Dupré" || got.To[0].Address != "elodie@example.fr" {
		t.Errorf("mailpit has %d messages, first %+v", len(list), got)
	}

	full, err := mp.Message(t.Context(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if full.ReturnPath != "noreply@aptflow.example" || full.From.Name != "Préfecture du Rhône" {
		t.Errorf("sender: %q, %+v", full.ReturnPath, full.From)
	}
	if !strings.Contains(full.Text, "Bonjour Élodie Dupré") || !strings.Contains(full.HTML, "<p>Bonjour Élodie Dupré,</p>") {
		t.Errorf("bodies: %q / %q", full.Text, full.HTML)
	}
	if len(full.Attachments) != 1 || full.Attachments[0].FileName != "attestation-apt-42.pdf" ||
		full.Attachments[0].ContentType != "application/pdf" {
		t.Fatalf("attachments: %+v", full.Attachments)
	}
	pdf, err := mp.Attachment(t.Context(), got.ID, full.Attachments[0].PartID)
	if err != nil || !bytes.Equal(pdf, pdfBytes()) {
		t.Errorf("attachment: %d bytes (%v), want the %d sent", len(pdf), err, len(pdfBytes()))
	}

	// The raw message, parsed independently of mailpit.
	raw, err := mp.Raw(t.Context(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, raw, m)
}
