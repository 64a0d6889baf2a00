package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// waitData waits until the stalling server holds a message.
func waitData(t *testing.T, s *stallingSMTP) {
	t.Helper()
	select {
	case <-s.Data:
	case <-time.After(30 * time.Second):
		t.Fatal("no e-mail reached the SMTP server")
	}
}

// jobInFlight is `aptflow serve`, run in-process, in the middle of sending
// an e-mail to a stalling SMTP server.
type jobInFlight struct {
	e       procEnv
	serve   *inProcess
	db      *pgxpool.Pool
	dossier int64
	usager  string
}

// startJobInFlight starts serve with SHUTDOWN_TIMEOUT shutdownTimeout and
// e-mails to smtpSrv, and passes a dossier en instruction; it returns once
// the e-mail's data reached the server.
func startJobInFlight(t *testing.T, smtpSrv *stallingSMTP, shutdownTimeout string) *jobInFlight {
	t.Helper()
	dbURL := dbtest.URL(t)
	j := &jobInFlight{e: baseEnv(t, dbURL, smtpSrv.URL()).with("SHUTDOWN_TIMEOUT", shutdownTimeout), db: openDB(t, dbURL)}
	base := j.e["PUBLIC_URL"]
	j.serve = startRun(t, j.e, base, "serve")
	w := newWorld(t, base, createToken(t, j.e))
	j.dossier, j.usager = w.dossier()
	w.instruct(j.dossier)
	waitData(t, smtpSrv)
	return j
}

// state reads the dossier's delivery and its job.
func (j *jobInFlight) state(t *testing.T) (delivery string, attempts int, job string, attempt int) {
	t.Helper()
	if err := j.db.QueryRow(context.Background(), `
		SELECT d.status, d.attempts, r.state, r.attempt FROM email_deliveries d, river_job r
		WHERE d.dossier_id = $1 AND r.kind = 'send_email'`, j.dossier).Scan(&delivery, &attempts, &job, &attempt); err != nil {
		t.Fatal(err)
	}
	return delivery, attempts, job, attempt
}

// TestGracefulStop stops `aptflow serve` (run in-process, as main does on
// SIGTERM) while a job is in the middle of an SMTP conversation.
func TestGracefulStop(t *testing.T) {
	t.Parallel()

	t.Run("RunningJobFinishes", func(t *testing.T) {
		t.Parallel()
		// The server answers the data after 2s, within SHUTDOWN_TIMEOUT.
		smtpSrv := newStallingSMTP(t, 2*time.Second)
		j := startJobInFlight(t, smtpSrv, "20s")

		took, err := j.serve.stop(30 * time.Second)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if took > 10*time.Second {
			t.Errorf("stop took %s for a 2s job", took)
		}
		if _, err := http.Get(j.e["PUBLIC_URL"] + "/healthz"); err == nil {
			t.Error("still accepting requests after the stop")
		}
		delivery, attempts, job, _ := j.state(t)
		if delivery != "sent" || attempts != 1 || job != "completed" || smtpSrv.Taken() != 1 {
			t.Errorf("delivery %s after %d attempts, job %s, %d messages taken; want sent, 1, completed, 1", delivery, attempts, job, smtpSrv.Taken())
		}
		if logs := j.serve.logs.String(); !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "cancelling") {
			t.Errorf("logs:\n%s", logs)
		}
	})

	t.Run("StuckJobRequeued", func(t *testing.T) {
		t.Parallel()
		// The server never answers the data: past SHUTDOWN_TIMEOUT the job
		// is cancelled and goes back to the queue, where another process
		// (with a working SMTP server) sends the e-mail once.
		smtpSrv := newStallingSMTP(t, 0)
		j := startJobInFlight(t, smtpSrv, "1s")

		took, err := j.serve.stop(30 * time.Second)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if took < time.Second || took > 8*time.Second {
			t.Errorf("stop took %s; want SHUTDOWN_TIMEOUT (1s) and a little", took)
		}
		// Interrupted, not failed: available at once, the attempt not spent.
		if delivery, _, job, attempt := j.state(t); delivery != "pending" || job != "available" || attempt != 0 {
			t.Fatalf("after the stop: delivery %s, job %s at attempt %d; want pending, available, 0", delivery, job, attempt)
		}
		if !strings.Contains(j.serve.logs.String(), "cancelling them back to the queue") {
			t.Errorf("the cancellation is not logged:\n%s", j.serve.logs)
		}

		mp := mailpittest.Start(t)
		metricsAddr := freeAddr(t)
		startRun(t, j.e.with("SMTP_URL", mp.SMTPURL(), "METRICS_ADDR", metricsAddr), "http://"+metricsAddr, "work")
		waitSQL(t, j.db, 30*time.Second, `SELECT status = 'sent' FROM email_deliveries WHERE dossier_id = $1`, j.dossier)
		mp.WaitFor(t, "to:"+j.usager, 1, 10*time.Second)
		time.Sleep(300 * time.Millisecond) // room for a wrongful second one
		if n, err := mp.Count(context.Background(), "to:"+j.usager); err != nil || n != 1 {
			t.Errorf("e-mails delivered: %d, %v; want 1", n, err)
		}
		if smtpSrv.Taken() != 0 {
			t.Errorf("the stalled server took %d messages", smtpSrv.Taken())
		}
	})
}

// TestSIGTERM builds the binary and stops it with SIGTERM while a job is
// stuck: it cancels the job back to the queue and exits 0.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	smtpSrv := newStallingSMTP(t, 0)
	dbURL := dbtest.URL(t)
	e := baseEnv(t, dbURL, smtpSrv.URL()).with("SHUTDOWN_TIMEOUT", "1s")
	base := e["PUBLIC_URL"]
	p := startProcess(t, e, "serve")
	waitReady(t, base, p.done)
	w := newWorld(t, base, createToken(t, e))
	id, _ := w.dossier()
	w.instruct(id)
	waitData(t, smtpSrv)

	start := time.Now()
	code, err := p.terminate(30 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("exit code %d, %v; want 0\n%s", code, err, p.logs)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("exit %s after SIGTERM", took)
	}
	if !strings.Contains(p.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop logged:\n%s", p.logs)
	}
	db := openDB(t, dbURL)
	var state string
	if err := db.QueryRow(context.Background(), `SELECT state FROM river_job WHERE kind = 'send_email'`).Scan(&state); err != nil || state != "available" {
		t.Errorf("job %q, %v; want available", state, err)
	}
}
