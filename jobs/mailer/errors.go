package mailer

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// SendError is why a message was not sent, with what a retry policy needs.
type SendError struct {
	// Code is the SMTP reply code (451, 550, …), 0 when no server reply
	// caused the failure (connection, timeout, invalid message).
	Code int
	// Reply is the server's reply, e.g. "550 5.1.1 mailbox unavailable". It
	// may quote the recipient's address: keep it out of logs.
	Reply string
	// Temporary is true when sending the same message later may succeed.
	Temporary bool
	Err       error
}

// Error says whether the failure is permanent and gives the server's reply
// when there is one.
func (e *SendError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	switch {
	case e.Reply != "":
		return "send e-mail: " + kind + " SMTP error: " + e.Reply
	case e.Err != nil:
		return "send e-mail: " + kind + " error: " + e.Err.Error()
	}
	return "send e-mail: " + kind + " error"
}

// Unwrap returns the underlying error (go-mail's, the network's, the context's).
func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a *SendError that no retry can fix. Any
// other error is assumed temporary: retrying by mistake costs a delay, giving
// up by mistake loses an e-mail.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && !se.Temporary
}

// classify turns an error from go-mail into a *SendError. dialing is true for
// errors before the envelope (connect, greeting, EHLO, STARTTLS, AUTH): those
// are about the relay, not the message, so they stay temporary even with a
// 5xx (a bad password must not fail every pending e-mail for good).
func classify(ctx context.Context, err error, dialing bool) *SendError {
	se := &SendError{Temporary: true, Err: err}
	if ctxErr := contextErr(ctx); ctxErr != nil {
		// Cancelling closes the connection, so err is an I/O error; keep the
		// reason visible to errors.Is(err, context.DeadlineExceeded).
		se.Err = fmt.Errorf("%w: %w", ctxErr, err)
		return se
	}
	var gm *mail.SendError
	if !dialing && errors.As(err, &gm) {
		if gm.Reason == mail.ErrGetSender || gm.Reason == mail.ErrGetRcpts {
			se.Temporary = false // our addresses: no server will ever take them
			return se
		}
		// A dropped connection comes back with code 0 and IsTemp false:
		// only a 5xx reply is a verdict on the message.
		if code := gm.ErrorCode(); code != 0 {
			se.Code, se.Reply = code, reply(gm, code)
			se.Temporary = code/100 != 5
		}
		return se
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		se.Code, se.Reply = tp.Code, OneLine(fmt.Sprintf("%03d %s", tp.Code, tp.Msg))
	}
	return se
}

// contextErr is ctx.Err(), or DeadlineExceeded as soon as the deadline has
// passed: the connection's deadline is the context's and may fire before
// the context's own timer does.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// reply digs the server's reply out of a go-mail SendError. go-mail keeps the
// *textproto.Error in an unexported list without Unwrap, and prints it as
// "<reason>: <reply>[, affected recipient(s): …][, affected message ID: …]",
// where the reply is `550 "5.1.1 text"` (Go quotes the text since 1.26).
func reply(gm *mail.SendError, code int) string {
	s := gm.Error()
	prefix := strconv.Itoa(code) + " "
	i := strings.Index(s, prefix)
	if i < 0 {
		return strconv.Itoa(code)
	}
	s = s[i+len(prefix):]
	if q, err := strconv.QuotedPrefix(s); err == nil {
		text, _ := strconv.Unquote(q)
		return OneLine(prefix + text)
	}
	for _, tail := range []string{", affected recipient(s): ", ", affected message ID: "} {
		if i := strings.Index(s, tail); i >= 0 {
			s = s[:i]
		}
	}
	return OneLine(prefix + s)
}
