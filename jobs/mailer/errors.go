package mailer

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"time"
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

// The steps of a mail transaction, for a *stepError.
const (
	stepMailFrom = "MAIL FROM"
	stepRcptTo   = "RCPT TO"
	stepData     = "DATA"
)

// stepError is an error of one step of a mail transaction: a reply of the
// server (a *textproto.Error inside) or a failed connection.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// classify turns an error of a send into a *SendError. dialing is true for
// errors before the envelope (connect, greeting, EHLO, STARTTLS, AUTH): those
// are about the relay, not the message, so they stay temporary even with a
// 5xx (a bad password must not fail every pending e-mail for good). During
// the transaction, only a 5xx reply is a verdict on the message: a dropped
// connection or a 4xx may go better later.
func classify(ctx context.Context, err error, dialing bool) *SendError {
	se := &SendError{Temporary: true, Err: err}
	if ctxErr := contextErr(ctx); ctxErr != nil {
		// Cancelling closes the connection, so err is an I/O error; keep the
		// reason visible to errors.Is(err, context.DeadlineExceeded).
		se.Err = fmt.Errorf("%w: %w", ctxErr, err)
		return se
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		se.Code, se.Reply = tp.Code, OneLine(fmt.Sprintf("%03d %s", tp.Code, tp.Msg))
		se.Temporary = dialing || tp.Code/100 != 5
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
