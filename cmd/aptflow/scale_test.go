package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// TestScaleOut runs one `aptflow serve` and two `aptflow work` (real
// binaries) on one database and one mailpit: 150 transitions make 150
// e-mails, each delivered exactly once, whichever process sends it; and the
// periodic jobs are enqueued by River's leader alone.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	const n = 150
	const opsAuth = "ops:scale-out"
	mp := mailpittest.Start(t)
	dbURL := dbtest.URL(t)
	e := baseEnv(t, dbURL, mp.SMTPURL())
	e = e.with(
		// Every connection open from the start: a server full of other
		// tests' connections must not refuse the one that records an
		// e-mail as sent (its job would send it again: at least once).
		"DATABASE_URL", e["DATABASE_URL"]+"&pool_min_conns="+strconv.Itoa(testPoolConns),
		"OPS_BASIC_AUTH", opsAuth,
		// Periodic jobs every second, to see who enqueues them; debug logs
		// say which process runs River's periodic job enqueuer.
		"STALE_SCAN_CRON", "@every 1s",
		"DIGEST_CRON", "@every 1s",
		"LOG_LEVEL", "debug",
	)
	base := e["PUBLIC_URL"]
	procs := []*process{startProcess(t, e, "serve")}
	metricsURLs := []string{base + "/metrics"}
	for range 2 {
		// A work process serves its metrics on METRICS_ADDR; it has no API.
		addr := freeAddr(t)
		procs = append(procs, startProcess(t, e.with("METRICS_ADDR", addr), "work"))
		metricsURLs = append(metricsURLs, "http://"+addr+"/metrics")
	}
	waitReady(t, base, procs[0].done)
	for i, p := range procs[1:] {
		waitReady(t, metricsURLs[i+1][:len(metricsURLs[i+1])-len("/metrics")], p.done)
	}
	w := newWorld(t, base, createToken(t, e))
	db := openDB(t, dbURL)

	// 150 dossiers passed en instruction, eight clients at a time.
	start := time.Now()
	usagers := make(chan string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id, usager, err := w.tryDossier()
			if err == nil {
				err = w.tryInstruct(id)
			}
			if err != nil {
				errs <- err
				return
			}
			usagers <- usager
		})
	}
	wg.Wait()
	close(errs)
	close(usagers)
	for err := range errs {
		t.Fatal(err)
	}

	mp.WaitFor(t, "", n, 90*time.Second)
	t.Logf("%d e-mails delivered %s after the first request", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second) // room for wrongful duplicates
	msgs, err := mp.Messages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	perRecipient := map[string]int{}
	for _, m := range msgs {
		for _, to := range m.To {
			perRecipient[to.Address]++
		}
	}
	for u := range usagers {
		if perRecipient[u] != 1 {
			t.Errorf("%s received %d e-mails, want 1", u, perRecipient[u])
		}
	}
	if len(msgs) != n {
		t.Errorf("mailpit holds %d messages, want %d", len(msgs), n)
	}
	var sent, once int
	if err := db.QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE attempts = 1) FROM email_deliveries`).Scan(&sent, &once); err != nil {
		t.Fatal(err)
	}
	if sent != n || once != n {
		t.Errorf("delivery log: %d sent, %d at the first attempt; want %d", sent, once, n)
	}

	// Each process counts what it sent: together, every e-mail once.
	total := 0.0
	shares := make([]float64, len(procs))
	for i, u := range metricsURLs {
		s, _ := scrape(t, u, opsAuth)
		shares[i] = s[`aptflow_emails_total{kind="en_instruction",status="sent"}`]
		total += shares[i]
	}
	t.Logf("e-mails sent by serve, work, work: %v", shares)
	if total != n {
		t.Errorf("aptflow_emails_total over the three processes: %v, want %d", total, n)
	}

	// River's leader, and only it, runs the periodic job enqueuer: wait
	// for a few of its jobs (an election takes a moment).
	waitSQL(t, db, 30*time.Second, `SELECT count(*) >= 3 FROM river_job WHERE metadata->>'periodic' = 'true'`)
	var leader string
	if err := db.QueryRow(context.Background(), `SELECT leader_id FROM river_leader`).Scan(&leader); err != nil {
		t.Fatal(err)
	}
	enqueuers := 0
	for i, p := range procs {
		var clientID string
		runsPeriodic := false
		records, _ := logLines(p.logs)
		for _, l := range records {
			msg, _ := l["msg"].(string)
			switch {
			case msg == "River client started":
				clientID, _ = l["client_id"].(string)
			case strings.HasSuffix(msg, "PeriodicJobEnqueuer: Run loop started"):
				runsPeriodic = true
			}
		}
		if runsPeriodic {
			enqueuers++
			if clientID != leader {
				t.Errorf("process %d (%s) runs the periodic jobs but the leader is %s", i, clientID, leader)
			}
		}
	}
	if enqueuers != 1 {
		t.Errorf("%d processes ran River's periodic job enqueuer, want 1", enqueuers)
	}

	for i, p := range procs {
		if code, err := p.terminate(30 * time.Second); code != 0 || err != nil {
			t.Errorf("process %d: exit code %d, %v", i, code, err)
		}
	}
}
