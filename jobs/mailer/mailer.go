package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	netmail "net/mail"
	"net/textproto"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/wneessen/go-mail"
)

// Message is one e-mail to send.
type Message struct {
	// MessageID is the Message-ID without angle brackets, e.g.
	// "delivery-42@aptflow.example". It must be the same on every retry of a
	// delivery: receivers and the file mailer use it to spot a resend.
	MessageID string
	// From and To are RFC 5322 addresses, with or without a display name
	// (« Élodie Dupré <elodie@example.fr> »).
	From, To string
	// ReplyTo is the Reply-To address, or "" for none: replies then go to
	// From, which a no-reply sender does not read.
	ReplyTo string
	// Subject is one line; line breaks are turned into spaces.
	Subject string
	// Text and HTML are the two alternative bodies; at least one is required.
	Text, HTML  string
	Attachments []Attachment
	// Date is the Date header; the zero time means now.
	Date time.Time
	// Headers are extra header fields, e.g. X-Aptflow-Dossier. They cannot
	// replace the headers the mailer sets (From, Subject, Content-Type, …).
	Headers map[string]string
}

// Attachment is a file attached to a [Message].
type Attachment struct {
	Filename    string
	ContentType string // e.g. "application/pdf"; empty: guessed from Filename
	Data        []byte
}

// Mailer sends messages. Implementations are safe for concurrent use; a
// failure is a *[SendError].
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// New returns the mailer the configuration asks for: an [SMTPMailer] for
// smtpURL, or, when smtpURL is empty, a [FileMailer] writing under mailDir.
// With signer not nil, every message is DKIM-signed.
func New(smtpURL, mailDir string, signer *DKIM) (Mailer, error) {
	if smtpURL == "" {
		return NewFileMailer(mailDir, signer)
	}
	return NewSMTP(smtpURL, WithDKIM(signer))
}

// ErrInvalidMessage is wrapped by the permanent *[SendError] returned for a
// message that cannot be built: no retry can fix it.
var ErrInvalidMessage = errors.New("invalid message")

func invalid(format string, args ...any) error {
	return &SendError{Err: fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))}
}

// reservedHeaders are set by the mailer from Message fields or by go-mail
// for the MIME structure; letting Headers set them again would produce a
// second From or a broken multipart.
var reservedHeaders = []string{
	"bcc", "cc", "content-description", "content-disposition", "content-id",
	"content-transfer-encoding", "content-type", "date", "dkim-signature", "from",
	"message-id", "mime-version", "received", "reply-to", "return-path", "sender",
	"subject", "to",
}

// wire is a message as it goes on the wire: its envelope, and its bytes
// with CRLF line ends, DKIM-signed if the mailer signs.
type wire struct {
	from, to string // envelope addresses, in angle brackets
	data     []byte
}

// prepare starts every Send: a cancelled context or an invalid message
// stops it before any I/O. The message is rendered once: a send that must
// start again on a new connection sends the same bytes, whose signature
// holds only for them (go-mail draws new MIME boundaries at each render).
func prepare(ctx context.Context, m Message, signer *DKIM) (*wire, error) {
	if err := ctx.Err(); err != nil {
		return nil, &SendError{Temporary: true, Err: err}
	}
	msg, head, from, to, err := buildMsg(m)
	if err != nil {
		return nil, err
	}
	buf := bytes.NewBufferString(head)
	if _, err := msg.WriteTo(buf); err != nil {
		return nil, invalid("render: %v", err)
	}
	w := &wire{from: "<" + from.Address + ">", to: "<" + to.Address + ">", data: buf.Bytes()}
	if signer != nil {
		if w.data, err = signer.Sign(w.data); err != nil {
			// The key was checked at start: this is no fault of the message.
			return nil, &SendError{Temporary: true, Err: err}
		}
	}
	return w, nil
}

// buildMsg checks m and turns it into a go-mail message, and the header
// fields that carry text, which the mailer writes itself before go-mail's
// (see header.go): head is « From », « To », « Reply-To » if any and
// « Subject », each ending in CRLF. Both mailers use it, so a file holds
// what SMTP would send and both refuse the same messages.
func buildMsg(m Message) (msg *mail.Msg, head string, from, to *netmail.Address, err error) {
	fail := func(err error) (*mail.Msg, string, *netmail.Address, *netmail.Address, error) {
		return nil, "", nil, nil, err
	}
	if err := checkMessageID(m.MessageID); err != nil {
		return fail(err)
	}
	if from, err = parseAddress("From", m.From); err != nil {
		return fail(err)
	}
	if to, err = parseAddress("To", m.To); err != nil {
		return fail(err)
	}
	fields := []string{addressField("From", from), addressField("To", to)}
	if m.ReplyTo != "" {
		replyTo, err := parseAddress("Reply-To", m.ReplyTo)
		if err != nil {
			return fail(err)
		}
		fields = append(fields, addressField("Reply-To", replyTo))
	}
	fields = append(fields, foldField("Subject", OneLine(m.Subject)))
	if m.Text == "" && m.HTML == "" {
		return fail(invalid("no body"))
	}

	msg = mail.NewMsg() // UTF-8, quoted-printable
	msg.SetMessageIDWithValue(m.MessageID)
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	msg.SetUserAgent("aptflow")
	// RFC 3834: an automatic message; a caller's own value below wins.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")

	names := make([]string, 0, len(m.Headers))
	for name := range m.Headers {
		names = append(names, name)
	}
	slices.Sort(names) // the same message gives the same bytes
	for _, name := range names {
		if !validFieldName(name) || slices.Contains(reservedHeaders, strings.ToLower(name)) {
			return fail(invalid("header name %q", OneLine(name)))
		}
		// Canonical, so "auto-submitted" replaces the default instead of
		// adding a second Auto-Submitted.
		msg.SetGenHeader(mail.Header(textproto.CanonicalMIMEHeaderKey(name)), OneLine(m.Headers[name]))
	}

	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	}

	for i, a := range m.Attachments {
		name := OneLine(a.Filename)
		if name == "" {
			return fail(invalid("attachment %d has no file name", i))
		}
		ct, err := contentType(a.ContentType, name)
		if err != nil {
			return fail(invalid("attachment %d: %v", i, err))
		}
		msg.AttachReadSeeker(name, bytes.NewReader(a.Data), mail.WithFileContentType(mail.ContentType(ct)))
	}
	return msg, strings.Join(fields, "\r\n") + "\r\n", from, to, nil
}

// parseAddress parses one address. A line break is refused outright rather
// than cleaned: an address with one is broken data, not a typo to fix. The
// address itself must be ASCII: a UTF-8 mailbox needs SMTPUTF8 all the way,
// which the workflow never asks for (it stores addresses in ASCII form).
func parseAddress(field, s string) (*netmail.Address, error) {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return nil, invalid("%s address contains a control character", field)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, invalid("%s address: %v", field, err)
	}
	if !plainText(a.Address) {
		return nil, invalid("%s address is not ASCII", field)
	}
	return a, nil
}

// checkMessageID accepts id-left@id-right as dot-atoms (RFC 5322 msg-id
// without the angle brackets, which go-mail adds).
func checkMessageID(id string) error {
	left, right, ok := strings.Cut(id, "@")
	if !ok || len(id) > 250 || !dotAtom(left) || !dotAtom(right) {
		return invalid("Message-ID %q", OneLine(id))
	}
	return nil
}

func dotAtom(s string) bool {
	if s == "" {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" || strings.ContainsFunc(atom, func(r rune) bool { return !isAtext(r) }) {
			return false
		}
	}
	return true
}

func isAtext(r rune) bool {
	return r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r))
}

// validFieldName: RFC 5322 field-name, printable ASCII except the colon.
func validFieldName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// contentType returns a clean media type for an attachment: the given one,
// re-formatted so that no parameter can smuggle a header, or one guessed
// from the file name.
func contentType(ct, filename string) (string, error) {
	if ct == "" {
		if ct = mime.TypeByExtension(filepath.Ext(filename)); ct == "" {
			return "application/octet-stream", nil
		}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("content type: %w", err)
	}
	if strings.Count(mt, "/") != 1 { // Go accepts a bare "pdf"
		return "", fmt.Errorf("content type %q: not type/subtype", mt)
	}
	clean := mime.FormatMediaType(mt, params)
	if clean == "" {
		return "", errors.New("content type cannot be formatted")
	}
	return clean, nil
}

// OneLine makes s fit on one line of a header: control characters (CR, LF,
// tab, …) and Unicode line separators become spaces, runs of spaces collapse,
// and invalid UTF-8 is replaced. A no-break space is kept: French
// typography puts one before « : ». The templates fold subjects with it too,
// so that what they promise (one line) is what the mailer sends.
func OneLine(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "\uFFFD"), func(r rune) bool {
		return r == ' ' || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}), " ")
}
