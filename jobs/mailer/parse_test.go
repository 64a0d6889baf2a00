package mailer

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
)

// parsed is a received message taken apart the way a mail client would.
type parsed struct {
	Header      netmail.Header
	Subject     string // decoded
	Text, HTML  string // decoded, CRLF turned into LF
	Attachments []Attachment
}

func parseMessage(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, raw)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	p := parsed{Header: msg.Header, Subject: subject}
	walkPart(t, &p, msg.Header, msg.Body)
	return p
}

// header is what netmail.Header and a part's textproto.MIMEHeader share.
type header interface{ Get(string) string }

// walkPart reads one MIME entity, recursing into multiparts. mime/multipart
// undoes quoted-printable itself; base64 is decoded here.
func walkPart(t *testing.T, p *parsed, h header, body io.Reader) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type %q: %v", h.Get("Content-Type"), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(body, params["boundary"])
		for {
			part, err := r.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("multipart: %v", err)
			}
			walkPart(t, p, part.Header, part)
		}
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("read %s part: %v", mt, err)
	}
	if disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		var dec mime.WordDecoder
		name, _ := dec.DecodeHeader(dparams["filename"])
		p.Attachments = append(p.Attachments, Attachment{Filename: name, ContentType: mt, Data: data})
		return
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	switch mt {
	case "text/plain":
		p.Text = text
	case "text/html":
		p.HTML = text
	default:
		t.Fatalf("unexpected part %s", mt)
	}
}
