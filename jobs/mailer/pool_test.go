package mailer

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestSMTPReuse: connections are reused between messages, and never after
// a failure; a connection the server dropped while idle costs a reconnect,
// not an error.
func TestSMTPReuse(t *testing.T) {
	t.Parallel()

	t.Run("OneConnectionForSequentialMessages", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, nil, serverOptions{})
		ml := newSMTP(t, ts.URL(""))
		for i := range 5 {
			m := testMessage(fmt.Sprintf("delivery-%d@aptflow.example", i))
			if err := ml.Send(t.Context(), m); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			checkDelivered(t, ts.Received()[i].Data, m)
		}
		if n := ts.opened.Load(); n != 1 {
			t.Errorf("%d connections for 5 messages, want 1", n)
		}
		if err := ml.Close(); err != nil {
			t.Fatal(err)
		}
		ts.WaitClosed(t, 1) // Close says QUIT
	})

	t.Run("MaxIdle0", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, nil, serverOptions{})
		ml := newSMTP(t, ts.URL(""), WithMaxIdle(0))
		for i := range 3 {
			if err := ml.Send(t.Context(), testMessage(fmt.Sprintf("d-%d@aptflow.example", i))); err != nil {
				t.Fatal(err)
			}
		}
		if n := ts.opened.Load(); n != 3 {
			t.Errorf("%d connections for 3 messages without a pool, want 3", n)
		}
		ts.WaitClosed(t, 3)
	})

	t.Run("DroppedWhileIdle", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, nil, serverOptions{idleTimeout: 200 * time.Millisecond})
		ml := newSMTP(t, ts.URL(""))
		if err := ml.Send(t.Context(), testMessage("first@aptflow.example")); err != nil {
			t.Fatal(err)
		}
		ts.WaitClosed(t, 1) // the server hung up on the idle connection
		m := testMessage("second@aptflow.example")
		if err := ml.Send(t.Context(), m); err != nil {
			t.Fatalf("send over a connection the server dropped: %v", err)
		}
		if r := ts.Received(); len(r) != 2 {
			t.Fatalf("server received %d messages, want 2", len(r))
		}
		checkDelivered(t, ts.Received()[1].Data, m)
		if n := ts.opened.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})

	t.Run("NotReusedAfterTempFail", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		ts := newTestServer(t, func(ts *testServer) {
			ts.OnMail = func(string) error {
				if calls.Add(1) == 1 {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
				}
				return nil
			}
		}, serverOptions{})
		ml := newSMTP(t, ts.URL(""))
		msg := testMessage("retry@aptflow.example")
		if se := sendErr(t, ml, t.Context(), msg); !se.Temporary || se.Code != 451 {
			t.Fatalf("got %+v, want temporary 451", se)
		}
		ts.WaitClosed(t, 1)
		if err := ml.Send(t.Context(), msg); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if n := ts.opened.Load(); n != 2 {
			t.Errorf("%d connections, want 2: the failed one must not be reused", n)
		}
	})

	t.Run("PermanentOnReusedConnection", func(t *testing.T) {
		t.Parallel()
		var rcpts atomic.Int32
		ts := newTestServer(t, func(ts *testServer) {
			ts.OnRcpt = func(string) error {
				if rcpts.Add(1) == 2 {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
				}
				return nil
			}
		}, serverOptions{})
		ml := newSMTP(t, ts.URL(""))
		if err := ml.Send(t.Context(), testMessage("ok@aptflow.example")); err != nil {
			t.Fatal(err)
		}
		se := sendErr(t, ml, t.Context(), testMessage("rejected@aptflow.example"))
		if se.Temporary || se.Code != 550 || se.Reply != "550 5.1.1 mailbox unavailable" {
			t.Errorf("got %+v, want permanent 550 with the server's text", se)
		}
		if n := rcpts.Load(); n != 2 {
			t.Errorf("RCPT sent %d times, want 2: a verdict on the message is not retried", n)
		}
	})
}
