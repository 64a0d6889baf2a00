package mailpittest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/mailpittest"
)

const subject = "Dossier n° 42 : la demande d'APT de « Élodie Dupré » est acceptée"

// pdf stands for an attestation: bytes that are not text, to check that the
// attachment comes back exactly.
var pdf = append([]byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), bytes.Repeat([]byte{0, 0xff, 0x80, '\n'}, 300)...)

func TestSendAndRead(t *testing.T) {
	t.Parallel()
	s := mailpittest.Start(t)
	ctx := t.Context()

	if !strings.HasPrefix(s.SMTPURL(), "smtp://127.0.0.1:") {
		t.Errorf("SMTPURL() = %q", s.SMTPURL())
	}
	msg := buildMessage(t, "dossier-42.accepte@aptflow.test")
	if err := smtp.SendMail(s.SMTPAddr, nil, "ne-pas-repondre@aptflow.test", []string{"elodie.dupre@example.org"}, msg); err != nil {
		t.Fatal(err)
	}

	found := s.WaitFor(t, `subject:"Élodie Dupré"`, 1, 10*time.Second)
	if len(found) != 1 || found[0].Subject != subject || found[0].Attachments != 1 {
		t.Fatalf("found %+v", found)
	}
	id := found[0].ID

	t.Run("Message", func(t *testing.T) {
		m, err := s.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != subject {
			t.Errorf("Subject = %q, want %q", m.Subject, subject)
		}
		if m.MessageID != "dossier-42.accepte@aptflow.test" {
			t.Errorf("MessageID = %q", m.MessageID)
		}
		if m.From != (mailpittest.Address{Name: "Préfecture du Rhône", Address: "ne-pas-repondre@aptflow.test"}) {
			t.Errorf("From = %+v", m.From)
		}
		if len(m.To) != 1 || m.To[0] != (mailpittest.Address{Name: "Élodie Dupré", Address: "elodie.dupre@example.org"}) {
			t.Errorf("To = %+v", m.To)
		}
		if !strings.Contains(m.Text, "Bonjour Élodie Dupré,") || !strings.Contains(m.HTML, "<p>Bonjour <b>Élodie Dupré</b>,</p>") {
			t.Errorf("Text = %q, HTML = %q", m.Text, m.HTML)
		}
		if len(m.Attachments) != 1 {
			t.Fatalf("Attachments = %+v", m.Attachments)
		}
		a := m.Attachments[0]
		sum := sha256.Sum256(pdf)
		if a.FileName != "attestation-APT-42.pdf" || a.ContentType != "application/pdf" || a.Size != len(pdf) || a.Checksums.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("attachment = %+v", a)
		}
		got, err := s.Attachment(ctx, id, a.PartID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pdf) {
			t.Errorf("attachment: got %d bytes, want the %d sent", len(got), len(pdf))
		}
	})

	t.Run("Headers", func(t *testing.T) {
		h, err := s.Headers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := h["Message-Id"]; !slices.Equal(got, []string{"<dossier-42.accepte@aptflow.test>"}) {
			t.Errorf("Message-Id = %q", got)
		}
		decoded, err := new(mime.WordDecoder).DecodeHeader(strings.Join(h["Subject"], ""))
		if err != nil || decoded != subject {
			t.Errorf("Subject %q decodes to %q, %v", h["Subject"], decoded, err)
		}
	})

	t.Run("SearchAndCount", func(t *testing.T) {
		for query, want := range map[string]int{
			"":                            1,
			"to:elodie.dupre@example.org": 1,
			"message-id:dossier-42.accepte@aptflow.test": 1,
			"has:attachment":          1,
			"to:personne@example.org": 0,
		} {
			n, err := s.Count(ctx, query)
			if err != nil || n != want {
				t.Errorf("Count(%q) = %d, %v; want %d", query, n, err, want)
			}
			found, err := s.Search(ctx, query)
			if err != nil || len(found) != want {
				t.Errorf("Search(%q) = %d messages, %v; want %d", query, len(found), err, want)
			}
		}
		all, err := s.Messages(ctx)
		if err != nil || len(all) != 1 || all[0].ID != id {
			t.Errorf("Messages() = %+v, %v", all, err)
		}
	})
}

func TestChaos(t *testing.T) {
	t.Parallel()
	s := mailpittest.Start(t)
	ctx := t.Context()
	send := func() error {
		return smtp.SendMail(s.SMTPAddr, nil, "ne-pas-repondre@aptflow.test", []string{"elodie.dupre@example.org"}, buildMessage(t, "chaos@aptflow.test"))
	}

	for _, tc := range []struct {
		name     string
		triggers mailpittest.ChaosTriggers
		code     int
	}{
		{"SenderTemporary", mailpittest.ChaosTriggers{Sender: mailpittest.ChaosTrigger{ErrorCode: 451, Probability: 100}}, 451},
		{"RecipientPermanent", mailpittest.ChaosTriggers{Recipient: mailpittest.ChaosTrigger{ErrorCode: 550, Probability: 100}}, 550},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.SetChaos(ctx, tc.triggers); err != nil {
				t.Fatal(err)
			}
			err := send()
			var reply *textproto.Error
			if !errors.As(err, &reply) || reply.Code != tc.code {
				t.Fatalf("send: %v, want an SMTP %d reply", err, tc.code)
			}
		})
	}

	t.Run("Off", func(t *testing.T) {
		if err := s.SetChaos(ctx, mailpittest.ChaosTriggers{}); err != nil {
			t.Fatal(err)
		}
		if err := send(); err != nil {
			t.Fatal(err)
		}
		s.WaitFor(t, "message-id:chaos@aptflow.test", 1, 10*time.Second)
		if n, err := s.Count(ctx, ""); err != nil || n != 1 {
			t.Errorf("Count = %d, %v; want only the message sent without chaos", n, err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		err := s.SetChaos(ctx, mailpittest.ChaosTriggers{Sender: mailpittest.ChaosTrigger{ErrorCode: 250, Probability: 100}})
		if err == nil || !strings.Contains(err.Error(), "400 Bad Request") {
			t.Errorf("SetChaos(250) = %v, want mailpit's 400", err)
		}
	})
}

// buildMessage writes an e-mail like aptflow's decisions: a UTF-8 subject and
// names, text and HTML alternatives, and a PDF attached.
func buildMessage(t *testing.T, messageID string) []byte {
	t.Helper()
	var body bytes.Buffer
	mixed := multipart.NewWriter(&body)
	var alt bytes.Buffer
	alternative := multipart.NewWriter(&alt)
	for _, part := range []struct{ contentType, content string }{
		{"text/plain; charset=utf-8", "Bonjour Élodie Dupré,\r\n\r\nVotre demande est acceptée.\r\n"},
		{"text/html; charset=utf-8", "<p>Bonjour <b>Élodie Dupré</b>,</p><p>Votre demande est acceptée.</p>"},
	} {
		w, err := alternative.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			t.Fatal(err)
		}
		qp := quotedprintable.NewWriter(w)
		fmt.Fprint(qp, part.content)
		qp.Close()
	}
	alternative.Close()

	w, err := mixed.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/alternative; boundary=" + alternative.Boundary()}})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(alt.Bytes())
	w, err = mixed.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"application/pdf"},
		"Content-Transfer-Encoding": {"base64"},
		"Content-Disposition":       {`attachment; filename="attestation-APT-42.pdf"`},
	})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString(pdf)
	for len(enc) > 76 {
		fmt.Fprintf(w, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	fmt.Fprintf(w, "%s\r\n", enc)
	mixed.Close()

	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s <ne-pas-repondre@aptflow.test>\r\n", mime.QEncoding.Encode("utf-8", "Préfecture du Rhône"))
	fmt.Fprintf(&msg, "To: %s <elodie.dupre@example.org>\r\n", mime.QEncoding.Encode("utf-8", "Élodie Dupré"))
	fmt.Fprintf(&msg, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&msg, "Message-ID: <%s>\r\n", messageID)
	fmt.Fprintf(&msg, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&msg, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&msg, "Content-Type: multipart/mixed; boundary=%s\r\n\r\n", mixed.Boundary())
	msg.Write(body.Bytes())
	return msg.Bytes()
}
