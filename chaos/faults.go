package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// runner runs the faults one after the other on one stack.
type runner struct {
	o   options
	out io.Writer
	log io.Writer
	s   *stack
	w   *world
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "chaos: "+format+"\n", args...)
}

// fault is one way of breaking the stack.
type fault struct {
	name string
	run  func(ctx context.Context) (row, error)
}

func (r *runner) faults() []fault {
	return []fault{
		{"kill", r.kill},
		{"smtp-451", r.smtp451},
		{"smtp-drop", r.smtpDrop},
		{"smtp-550", r.smtp550},
		{"postgres", r.postgres},
		{"webhook-kill", r.webhookKill},
	}
}

func (r *runner) run(ctx context.Context) (*report, error) {
	rep := &report{Command: r.o.command, Machine: harness.MachineInfo(), Started: time.Now()}
	rep.Machine.Mailpit = mailpittest.Version
	s, err := startStack(ctx, r.o, r.logf)
	if err != nil {
		return nil, err
	}
	r.s = s
	defer s.close()
	if err := s.pool.QueryRow(ctx, `SHOW server_version`).Scan(&rep.Machine.Postgres); err != nil {
		return nil, err
	}
	if r.w, err = newWorld(ctx, newAPIClient(s.apiURL, s.token)); err != nil {
		return nil, err
	}
	var only []string
	if r.o.faults != "" {
		only = strings.Split(r.o.faults, ",")
	}
	for _, f := range r.faults() {
		if only != nil && !slices.Contains(only, f.name) {
			continue
		}
		r.logf("— fault %s", f.name)
		start := time.Now()
		row, err := f.run(ctx)
		row.Took = time.Since(start)
		if err != nil {
			row.Problems = append(row.Problems, err.Error())
			r.logf("%s: %v", f.name, err)
		}
		rep.Rows = append(rep.Rows, row)
		if ctx.Err() != nil {
			break
		}
	}
	// Stopped first, so that their logs are complete.
	s.stopAptflow()
	rep.Logs, err = scanLogs(s.logs)
	if err != nil {
		rep.Problems = append(rep.Problems, "reading the logs: "+err.Error())
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.Machine.LoadAfter = harness.LoadAverage()
	return rep, nil
}

func ids(ds []dossier) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// settle waits for the deliveries of dossiers and counts them into row.
func (r *runner) settle(ctx context.Context, row *row, dossiers []int64) ([]delivery, error) {
	ds, err := r.s.waitSettled(ctx, dossiers, 3*time.Minute)
	if err != nil {
		return ds, err
	}
	// Room for a wrongful late copy before counting.
	if err := harness.Sleep(ctx, time.Second); err != nil {
		return ds, err
	}
	t, err := r.s.count(ctx, ds)
	if err != nil {
		return ds, err
	}
	row.Tally = t
	if n := pending(ds); n > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d e-mails still pending after 3 minutes", n))
	}
	if t.Strays > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d e-mails given up on were received anyway", t.Strays))
	}
	return ds, nil
}

// kill kills the work process with SIGKILL several times during a burst of
// acceptances, restarting it each time. Jobs it was running stay `running`
// until River's rescuer (RESCUE_AFTER) puts them back in the queue; an
// e-mail the SMTP server accepted just before a kill, but that the dead
// process could not record, goes out again with the same Message-ID.
func (r *runner) kill(ctx context.Context) (row, error) {
	row := row{
		Fault:    fmt.Sprintf("`kill -9` of `aptflow work` ×%d, restarted each time", r.o.kills),
		Load:     fmt.Sprintf("%d acceptances (PDF + e-mail with it), %.0f/s through the API", r.o.accept, r.o.acceptRate),
		DupLimit: r.o.kills,
	}
	ds, err := r.w.dossiers(ctx, r.o.accept, "kill", 0, true)
	if err != nil {
		return row, err
	}
	rescuedBefore, err := r.s.rescued(ctx)
	if err != nil {
		return row, err
	}
	// A steady load the two processes keep up with, so that each kill
	// finds jobs running: a flood would only queue them, and stretch the
	// window in which a kill duplicates an e-mail (see killWindow) with
	// the time the saturated CPU makes every step wait.
	statuses := make([]int, len(ds))
	burst := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(burst)
		paced(ctx, len(ds), r.o.acceptRate, concurrentAPI, func(ctx context.Context, i int) {
			statuses[i], _ = r.w.c.event(ctx, ds[i].ID, "accepter", false)
		})
	}()
	inFlight, killed, lastKill, err := r.killRepeatedly(ctx, time.Duration(float64(len(ds))/r.o.acceptRate*float64(time.Second)))
	if err != nil {
		return row, err
	}
	<-burst
	if bad := notOK(statuses); bad != "" {
		row.Problems = append(row.Problems, "acceptances not answered 200: "+bad)
	}
	settled, err := r.settle(ctx, &row, ids(ds))
	if err != nil {
		return row, err
	}
	rescued, err := r.s.rescued(ctx)
	if err != nil {
		return row, err
	}
	row.Recovery = lastSent(settled).Sub(lastKill)
	row.RecoveryWhat = "last kill → last e-mail sent"
	// Every duplicate must come from a kill: its first copy sent by a
	// killed process, which died before recording it, and the rescued job
	// sending it again.
	if dups := row.Tally.duplicated; len(dups) > 0 {
		fromKills, err := r.s.killedCopies(ctx, "send_email", dups, killed)
		if err != nil {
			return row, err
		}
		if fromKills != len(dups) {
			row.Problems = append(row.Problems, fmt.Sprintf("%d e-mails received twice, %d of them sent by a killed process and rescued", len(dups), fromKills))
		} else {
			row.Notes = append(row.Notes, fmt.Sprintf("each duplicate was first sent by a killed process and sent again by its rescued job, with the same Message-ID (deliveries %v)", dups))
		}
	}
	row.Notes = append(row.Notes, r.killWindow(settled, start, lastKill))
	row.Notes = append(row.Notes, fmt.Sprintf("jobs running in the process at each kill: %v; River's rescuer put %d jobs back in the queue (RESCUE_AFTER=20s, checked every 30s)",
		inFlight, rescued-rescuedBefore))
	return row, nil
}

// killRepeatedly kills the work process r.o.kills times, spread over span,
// each when it has jobs running (or after 5 s without any), and restarts
// it each time. It returns the jobs running in it at each kill, the River
// client ids of the killed processes, and when the last kill was.
func (r *runner) killRepeatedly(ctx context.Context, span time.Duration) (inFlight []int, killed []string, lastKill time.Time, err error) {
	for range r.o.kills {
		if err := harness.Sleep(ctx, span/time.Duration(r.o.kills+1)); err != nil {
			return inFlight, killed, lastKill, err
		}
		clientID, err := riverClientID(r.s.logs[len(r.s.logs)-1])
		if err != nil {
			return inFlight, killed, lastKill, err
		}
		n := 0
		for deadline := time.Now().Add(5 * time.Second); n == 0 && time.Now().Before(deadline); {
			if n, err = r.s.runningIn(ctx, clientID); err != nil {
				return inFlight, killed, lastKill, err
			}
			if n == 0 {
				if err := harness.Sleep(ctx, 20*time.Millisecond); err != nil {
					return inFlight, killed, lastKill, err
				}
			}
		}
		r.s.killWork()
		lastKill = time.Now()
		inFlight = append(inFlight, n)
		killed = append(killed, clientID)
		r.logf("kill -9 %s with %d jobs running in it", r.s.work.Name, n)
		if err := r.s.startWork(ctx); err != nil {
			return inFlight, killed, lastKill, err
		}
	}
	return inFlight, killed, lastKill, nil
}

// killWindow describes the window in which a kill duplicates an e-mail:
// from the moment the SMTP server has the whole message (the client's final
// dot) to the moment aptflow has recorded it sent. A process killed inside
// it never records the send, and the rescued job sends the e-mail again: a
// kill duplicates about (e-mails/s of the process) × (window) e-mails. The
// window has two parts: the server storing the message and answering 250
// (mailpit's), then aptflow reading the reply and recording it (aptflow's).
func (r *runner) killWindow(ds []delivery, from, to time.Time) string {
	var server, client []time.Duration
	inBurst := 0
	for _, d := range ds {
		st, ok := r.s.relay.storedAt(messageID(d.ID))
		if !ok || d.SentAt == nil || d.Attempts != 1 {
			continue // only e-mails sent by their first run: a rescued one's window spans the rescue
		}
		server = append(server, st.ok.Sub(st.dot))
		client = append(client, d.SentAt.Sub(st.ok))
		if st.dot.After(from) && st.dot.Before(to) {
			inBurst++
		}
	}
	if len(server) < 2 || !to.After(from) {
		return "kill window not measured"
	}
	pct := func(ds []time.Duration, q float64) string {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		d := ds[int(q*float64(len(ds)-1))]
		if d < time.Millisecond {
			return "<1ms"
		}
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("kill window, p50 / p90: mailpit storing the message and answering %s / %s, then aptflow recording it sent %s / %s; "+
		"%.0f e-mails/s were sent by the two processes during the kills",
		pct(server, 0.5), pct(server, 0.9), pct(client, 0.5), pct(client, 0.9), float64(inBurst)/to.Sub(from).Seconds())
}

// riverClientID reads the id of the River client from a process's log.
func riverClientID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Msg      string `json:"msg"`
			ClientID string `json:"client_id"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "River client started" {
			return l.ClientID, nil
		}
	}
	return "", fmt.Errorf("%s: no River client id", path)
}

// notOK summarises the statuses that are not 200 ("" if none).
func notOK(statuses []int) string {
	counts := map[int]int{}
	for _, st := range statuses {
		if st != http.StatusOK {
			counts[st]++
		}
	}
	if len(counts) == 0 {
		return ""
	}
	return fmt.Sprint(counts)
}

// outage runs mails transitions with their e-mails while the SMTP side is
// broken for d (begin and end switch the fault), and measures the time from
// the end of the fault to the last e-mail sent.
func (r *runner) outage(ctx context.Context, row *row, tag string, d time.Duration, begin, end func(context.Context) error) error {
	ds, err := r.w.dossiers(ctx, r.o.mails, tag, 0, false)
	if err != nil {
		return err
	}
	if err := begin(ctx); err != nil {
		return err
	}
	on := time.Now()
	// The transitions over the first half of the outage: e-mails keep
	// arriving while the earlier ones retry.
	rate := float64(len(ds)) / (d / 2).Seconds()
	row.Load = fmt.Sprintf("%d transitions with an e-mail, %.0f/s during the fault", len(ds), rate)
	statuses := make([]int, len(ds))
	paced(ctx, len(ds), rate, concurrentAPI, func(ctx context.Context, i int) {
		statuses[i], _ = r.w.c.event(ctx, ds[i].ID, "passer_en_instruction", false)
	})
	if bad := notOK(statuses); bad != "" {
		row.Problems = append(row.Problems, "transitions not answered 200: "+bad)
	}
	if err := harness.Sleep(ctx, time.Until(on.Add(d))); err != nil {
		return err
	}
	during, err := r.s.deliveries(ctx, ids(ds))
	if err != nil {
		return err
	}
	sent, tries := 0, 0
	for _, dl := range during {
		tries += dl.Attempts
		if dl.Status == "sent" {
			sent++
		}
	}
	if err := end(ctx); err != nil {
		return err
	}
	off := time.Now()
	row.Notes = append(row.Notes, fmt.Sprintf("during the %s fault: %d tries failed, %d e-mails got through", d, tries-sent, sent))
	settled, err := r.settle(ctx, row, ids(ds))
	if err != nil {
		return err
	}
	row.Recovery = lastSent(settled).Sub(off)
	row.RecoveryWhat = "fault off → last e-mail sent"
	most := 0
	for _, dl := range settled {
		most = max(most, dl.Attempts)
	}
	row.Notes = append(row.Notes, fmt.Sprintf("at most %d tries for one e-mail (EMAIL_RETRY_MAX=5s caps the backoff, EMAIL_MAX_ATTEMPTS=50)", most))
	return nil
}

// smtp451 has mailpit answer 451 to every MAIL FROM for a while.
func (r *runner) smtp451(ctx context.Context) (row, error) {
	row := row{Fault: fmt.Sprintf("SMTP outage: mailpit answers 451 to every MAIL FROM for %s", r.o.outage)}
	err := r.outage(ctx, &row, "smtp451", r.o.outage,
		func(ctx context.Context) error {
			return r.s.mp.SetChaos(ctx, mailpittest.ChaosTriggers{Sender: mailpittest.ChaosTrigger{ErrorCode: 451, Probability: 100}})
		},
		func(ctx context.Context) error { return r.s.mp.SetChaos(ctx, mailpittest.ChaosTriggers{}) })
	return row, err
}

// smtpDrop has the relay cut the connection in the middle of every DATA
// for a while.
func (r *runner) smtpDrop(ctx context.Context) (row, error) {
	row := row{Fault: fmt.Sprintf("SMTP connection dropped during DATA (go-smtp relay), for %s", r.o.drop)}
	before := r.s.relay.dropped.Load()
	err := r.outage(ctx, &row, "smtpdrop", r.o.drop,
		func(context.Context) error { r.s.relay.dropping.Store(true); return nil },
		func(context.Context) error { r.s.relay.dropping.Store(false); return nil })
	row.Notes = append(row.Notes, fmt.Sprintf("%d connections cut in the middle of a message", r.s.relay.dropped.Load()-before))
	return row, err
}

// smtp550 sends e-mails of which some go to recipients the relay refuses
// with 550: those are failed at once (not retried), shown by the API and
// counted by the metrics of the process that tried them.
func (r *runner) smtp550(ctx context.Context) (row, error) {
	const n, refused = 20, 5
	row := row{
		Fault: "550 for some recipients",
		Load:  fmt.Sprintf("%d transitions with an e-mail, %d to recipients refused with 550", n, refused),
	}
	ds, err := r.w.dossiers(ctx, n, "smtp550", refused, false)
	if err != nil {
		return row, err
	}
	const sample = `aptflow_emails_total{kind="en_instruction",status="failed"}`
	bases := []string{r.s.apiURL, r.s.workOps}
	before := make([]float64, len(bases))
	for i, b := range bases {
		if before[i], err = scrape(ctx, b, sample); err != nil {
			return row, err
		}
	}
	err = parallel(ctx, len(ds), concurrentAPI, func(ctx context.Context, i int) error {
		st, err := r.w.c.event(ctx, ds[i].ID, "passer_en_instruction", false)
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("passer_en_instruction %d: %d", ds[i].ID, st)
		}
		return err
	})
	if err != nil {
		return row, err
	}
	settled, err := r.settle(ctx, &row, ids(ds))
	if err != nil {
		return row, err
	}
	// Each refused e-mail: failed after one attempt, the 550 in the API,
	// its job cancelled (not retried).
	var refusedIDs []int64
	var lastError string
	okRefused := 0
	for _, d := range ds[:refused] {
		api, err := r.w.c.dossier(ctx, d.ID)
		if err != nil {
			return row, err
		}
		if len(api.Emails) != 1 {
			row.Problems = append(row.Problems, fmt.Sprintf("dossier %d: %d e-mails in the API, want 1", d.ID, len(api.Emails)))
			continue
		}
		e := api.Emails[0]
		if e.Status != "failed" || e.Attempts != 1 || e.LastError == nil || !strings.Contains(*e.LastError, "550") {
			row.Problems = append(row.Problems, fmt.Sprintf("dossier %d: e-mail %s after %d attempts, last_error %v; want failed, 1, a 550", d.ID, e.Status, e.Attempts, e.LastError))
			continue
		}
		lastError = *e.LastError
		okRefused++
	}
	for _, dl := range settled {
		if strings.HasPrefix(dl.Recipient, rejectedPrefix) {
			refusedIDs = append(refusedIDs, dl.ID)
		}
	}
	var cancelled int
	if err := r.s.pool.QueryRow(ctx, `
		SELECT count(*) FROM river_job
		WHERE kind = 'send_email' AND (args->>'delivery_id')::bigint = ANY($1) AND state = 'cancelled' AND attempt = 1`,
		refusedIDs).Scan(&cancelled); err != nil {
		return row, err
	}
	if cancelled != refused {
		row.Problems = append(row.Problems, fmt.Sprintf("%d jobs of refused e-mails cancelled at their first attempt, want %d", cancelled, refused))
	}
	var total float64
	var split []string
	for i, b := range bases {
		after, err := scrape(ctx, b, sample)
		if err != nil {
			return row, err
		}
		total += after - before[i]
		split = append(split, fmt.Sprintf("%s +%.0f", []string{"serve", "work"}[i], after-before[i]))
	}
	if total != refused {
		row.Problems = append(row.Problems, fmt.Sprintf("%s rose by %.0f over the processes, want %d", sample, total, refused))
	}
	row.Notes = append(row.Notes,
		fmt.Sprintf("%d of %d refused e-mails `failed` after 1 attempt in GET /v1/dossiers/{id}, last_error %q; %d jobs cancelled, not retried", okRefused, refused, lastError, cancelled),
		fmt.Sprintf("metrics: `%s` +%.0f (%s)", sample, total, strings.Join(split, ", ")))
	return row, nil
}

// outcome is one transition of the PostgreSQL fault.
type outcome struct {
	id          int64
	target      string // the state a 200 promises
	status      int    // 0: no answer
	contentType string
}

// postgres restarts the cluster under a load of transitions. A transition
// answered 200 must hold, with its e-mail; the others must be answered as
// errors (5xx), never 2xx; aptflow must become ready again by itself.
func (r *runner) postgres(ctx context.Context) (row, error) {
	const rate = 20.0
	row := row{
		Fault: fmt.Sprintf("PostgreSQL restarted under load (fast shutdown, %s down, start)", r.o.pgDown),
		Load:  fmt.Sprintf("%d transitions (half accepter, half passer_en_instruction), %.0f/s", r.o.pgLoad, rate),
	}
	half := r.o.pgLoad / 2
	toAccept, err := r.w.dossiers(ctx, half, "pgacc", 0, true)
	if err != nil {
		return row, err
	}
	toInstruct, err := r.w.dossiers(ctx, r.o.pgLoad-half, "pgins", 0, false)
	if err != nil {
		return row, err
	}
	ops := make([]outcome, 0, r.o.pgLoad)
	for i := range max(len(toAccept), len(toInstruct)) {
		if i < len(toAccept) {
			ops = append(ops, outcome{id: toAccept[i].ID, target: "accepte"})
		}
		if i < len(toInstruct) {
			ops = append(ops, outcome{id: toInstruct[i].ID, target: "en_instruction"})
		}
	}

	watch := newReadiness(ctx, []string{r.s.apiURL, r.s.workOps})
	defer watch.stop()
	burst := make(chan struct{})
	go func() {
		defer close(burst)
		paced(ctx, len(ops), rate, concurrentAPI, func(ctx context.Context, i int) {
			event := "passer_en_instruction"
			if ops[i].target == "accepte" {
				event = "accepter"
			}
			ops[i].status, ops[i].contentType, _ = r.w.c.eventAnswer(ctx, ops[i].id, event, false)
		})
	}()
	if err := harness.Sleep(ctx, 3*time.Second); err != nil {
		return row, err
	}
	r.logf("restarting PostgreSQL, down for %s", r.o.pgDown)
	stopping := time.Now()
	stopped, started, err := r.s.restartCluster(ctx, r.o.pgDown)
	if err != nil {
		return row, err
	}
	r.logf("PostgreSQL down %s, back at +%s", stopped.Sub(stopping).Round(time.Millisecond), started.Sub(stopping).Round(time.Millisecond))
	<-burst
	// Both processes ready again, by themselves.
	for _, b := range []string{r.s.apiURL, r.s.workOps} {
		if err := harness.WaitReady(ctx, nil, b, time.Minute); err != nil {
			return row, fmt.Errorf("%s never ready again: %w", b, err)
		}
	}
	readyAt, unready := watch.lastReady(started)
	row.Recovery = readyAt.Sub(started)
	row.RecoveryWhat = "PostgreSQL accepting again → /readyz 200 on serve and work"

	// What each answer promised, against what the database holds.
	answered := map[string]int{}
	var committed []int64
	falseOK, lateOK, unclean := 0, 0, 0
	for _, op := range ops {
		answered[statusClass(op.status)]++
		if op.status >= 500 && op.contentType != "application/problem+json" {
			unclean++
		}
		d, err := r.w.c.dossier(ctx, op.id)
		if err != nil {
			return row, err
		}
		done := d.State == op.target
		switch {
		case op.status == http.StatusOK && !done:
			falseOK++
		case op.status == http.StatusOK:
			committed = append(committed, op.id)
		case op.status >= 200 && op.status < 300:
			falseOK++ // no other 2xx is expected of an event
		case done:
			// Committed, but the answer was lost with the connection: the
			// client saw an error, and the e-mail must still go out.
			lateOK++
			committed = append(committed, op.id)
		}
	}
	if falseOK > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d transitions answered 2xx are not in the database", falseOK))
	}
	if unclean > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d errors were not application/problem+json", unclean))
	}
	if answered["4xx"] > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d transitions answered 4xx", answered["4xx"]))
	}
	if _, err := r.settle(ctx, &row, committed); err != nil {
		return row, err
	}
	row.Tally.Lost += falseOK
	row.Notes = append(row.Notes,
		fmt.Sprintf("PostgreSQL down for %s (fast shutdown → accepting again); /readyz answered 503 for %s, then 200 again on serve and work by themselves",
			started.Sub(stopping).Round(100*time.Millisecond), unready.Round(100*time.Millisecond)),
		fmt.Sprintf("answers: %s (errors as application/problem+json); every 2xx is in the database (%d were not); %d answered with an error had committed anyway, and their e-mails went out too",
			formatAnswers(answered), falseOK, lateOK))
	return row, nil
}

func statusClass(status int) string {
	switch {
	case status == 0:
		return "no answer"
	case status == http.StatusOK:
		return "200"
	case status >= 500:
		return fmt.Sprintf("%d", status)
	default:
		return fmt.Sprintf("%dxx", status/100)
	}
}

func formatAnswers(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d × %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

// readiness polls /readyz of some processes every 100 ms and remembers
// when each answered what.
type readiness struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	// notReady is, per base URL, the times /readyz did not answer 200.
	notReady map[string][]time.Time
	ok       map[string][]time.Time
}

func newReadiness(ctx context.Context, bases []string) *readiness {
	ctx, cancel := context.WithCancel(ctx)
	w := &readiness{cancel: cancel, done: make(chan struct{}), notReady: map[string][]time.Time{}, ok: map[string][]time.Time{}}
	var wg sync.WaitGroup
	for _, b := range bases {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := harness.Ready(ctx, b)
				now := time.Now()
				if ctx.Err() != nil {
					return
				}
				w.mu.Lock()
				if err != nil {
					w.notReady[b] = append(w.notReady[b], now)
				} else {
					w.ok[b] = append(w.ok[b], now)
				}
				w.mu.Unlock()
				_ = harness.Sleep(ctx, 100*time.Millisecond)
			}
		})
	}
	go func() { wg.Wait(); close(w.done) }()
	return w
}

func (w *readiness) stop() {
	w.cancel()
	<-w.done
}

// lastReady returns when every process answered 200 again after since
// (the latest of their first 200s after their last failure), and how long
// the longest of them was not ready.
func (w *readiness) lastReady(since time.Time) (time.Time, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	readyAt := since
	var unready time.Duration
	for b, fails := range w.notReady {
		if len(fails) == 0 {
			continue
		}
		last := fails[len(fails)-1]
		for _, t := range w.ok[b] {
			if t.After(last) {
				readyAt = later(readyAt, t)
				unready = max(unready, t.Sub(fails[0]))
				break
			}
		}
	}
	return readyAt, unready
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
