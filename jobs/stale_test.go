package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/workflow"
)

// clock is the service's clock in the stale tests: dossiers are created and
// touched at times the test chooses, and scans run as of given times; no
// test sleeps through a stale delay.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// day is a stale delay's unit: the scan counts days as 24 hours.
const day = 24 * time.Hour

// t0 is when the stale tests' dossiers are created; apptest procedures go
// stale after 30 days.
var t0 = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)

// staleSetup starts a stack on a clock at t0, with a procedure and one
// instructeur on it.
func staleSetup(t *testing.T) (s *apptest.Stack, c *clock, proc int64, inst string) {
	t.Helper()
	c = &clock{t: t0}
	s = apptest.Start(t, apptest.Options{Now: c.Now})
	proc = s.Procedure()
	return s, c, proc, s.Instructeur(proc, "Camille Martin")
}

func scan(t *testing.T, s *apptest.Stack, at time.Time) jobs.ScanResult {
	t.Helper()
	res, err := jobs.ScanStale(t.Context(), s.Service, s.River, s.Jobs, at)
	if err != nil {
		t.Fatalf("scan as of %s: %v", at, err)
	}
	return res
}

func dossier(t *testing.T, s *apptest.Stack, id int64) map[string]any {
	t.Helper()
	return s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil)
}

func staleSince(t *testing.T, s *apptest.Stack, id int64) *time.Time {
	t.Helper()
	v, _ := dossier(t, s, id)["stale_since"].(string)
	if v == "" {
		return nil
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatal(err)
	}
	return &at
}

// deliveries counts the delivery-log rows of kind.
func deliveries(t *testing.T, s *apptest.Stack, kind string) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM email_deliveries WHERE kind = $1`, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var dossierNumber = regexp.MustCompile(`Dossier nº (\d+)`)

// listedDossiers waits for the one stale e-mail to an instructeur and
// returns the dossier numbers it lists, sorted.
func listedDossiers(t *testing.T, s *apptest.Stack, instructeur string) []int64 {
	t.Helper()
	msgs := s.Mailpit.WaitFor(t, "to:"+instructeur+` subject:"sans activité"`, 1, 20*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("%d stale e-mails to one instructeur, want 1", len(msgs))
	}
	m, err := s.Mailpit.Message(t.Context(), msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, sub := range dossierNumber.FindAllStringSubmatch(m.Text, -1) {
		id, _ := strconv.ParseInt(sub[1], 10, 64)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestScanStale(t *testing.T) {
	t.Parallel()
	s, _, proc, inst := staleSetup(t)
	id, usager := s.Dossier(proc)
	la, err := time.Parse(time.RFC3339Nano, dossier(t, s, id)["last_activity_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	threshold := la.Add(30 * day)

	t.Run("NotBeforeThreshold", func(t *testing.T) {
		if res := scan(t, s, threshold); res.Flagged != 0 || res.InstructeurEmails != 0 {
			t.Fatalf("scan exactly 30 days after the last activity: %+v", res)
		}
		if got := staleSince(t, s, id); got != nil {
			t.Fatalf("stale_since = %v", got)
		}
	})
	at := threshold.Add(time.Microsecond)
	t.Run("AfterThreshold", func(t *testing.T) {
		res := scan(t, s, at)
		if res.Flagged != 1 || res.Reminders != 1 || res.InstructeurEmails != 1 || res.Listed != 1 || res.AlreadyDone {
			t.Fatalf("scan: %+v", res)
		}
		if got := staleSince(t, s, id); got == nil || !got.Equal(at) {
			t.Fatalf("stale_since = %v, want %v", got, at)
		}
		h := dossier(t, s, id)["history"].([]any)
		last := h[len(h)-1].(map[string]any)
		if last["event"] != "signaler_inactif" || last["from"] != "en_construction" || last["to"] != "en_construction" || last["instructeur"] != nil {
			t.Fatalf("history row %v", last)
		}
		reminder := s.Mailpit.WaitFor(t, "to:"+usager+` subject:"toujours en construction"`, 1, 20*time.Second)
		if want := fmt.Sprintf("nº %d ", id); !strings.Contains(reminder[0].Subject, want) {
			t.Errorf("reminder subject %q", reminder[0].Subject)
		}
		if got := listedDossiers(t, s, inst); !slices.Equal(got, []int64{id}) {
			t.Errorf("instructeur e-mail lists %v, want [%d]", got, id)
		}
	})
	t.Run("Twice", func(t *testing.T) {
		if res := scan(t, s, at); !res.AlreadyDone || res.Flagged != 0 || res.Listed != 1 || res.InstructeurEmails != 1 {
			t.Fatalf("same scan again: %+v", res)
		}
		if res := scan(t, s, at.Add(day)); res.AlreadyDone || res.Flagged != 0 || res.InstructeurEmails != 0 {
			t.Fatalf("next day's scan: %+v", res)
		}
		waitJobsDone(t, s)
		if u, i := deliveries(t, s, workflow.MailStaleUsager), deliveries(t, s, workflow.MailStaleInstructeur); u != 1 || i != 1 {
			t.Fatalf("%d reminders and %d instructeur e-mails, want 1 and 1", u, i)
		}
		if n, err := s.Mailpit.Count(t.Context(), "to:"+inst); err != nil || n != 1 {
			t.Fatalf("%d e-mails to the instructeur (%v), want 1", n, err)
		}
		if got := staleSince(t, s, id); got == nil || !got.Equal(at) {
			t.Fatalf("stale_since moved to %v", got)
		}
	})
}

func TestScanStaleCleared(t *testing.T) {
	t.Parallel()
	s, c, proc, inst := staleSetup(t)
	patched, _ := s.Dossier(proc)
	messaged, _ := s.Dossier(proc)
	moved, _ := s.Dossier(proc)
	idle, _ := s.Dossier(proc)

	t1 := t0.Add(31 * day)
	if res := scan(t, s, t1); res.Flagged != 4 {
		t.Fatalf("first scan: %+v", res)
	}
	c.Set(t1.Add(time.Hour))
	s.Must(200, "PATCH", fmt.Sprintf("/v1/dossiers/%d", patched), map[string]any{"demandeur": map[string]any{"emploi": "serveuse"}})
	s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", messaged), map[string]any{"from": "usager", "body": "Je complète demain."})
	if r := s.Event(moved, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
		t.Fatalf("event: %d %s", r.StatusCode, r.Body)
	}
	for name, id := range map[string]int64{"Modification": patched, "MessageUsager": messaged, "Transition": moved} {
		if got := staleSince(t, s, id); got != nil {
			t.Errorf("%s: stale_since = %v, want cleared", name, got)
		}
	}
	if got := staleSince(t, s, idle); got == nil {
		t.Error("the idle dossier lost its flag")
	}

	// A day later nothing is stale again: the activity is recent and the
	// transitioned dossier is en instruction. 31 days after the activity,
	// the two dossiers start a new stale period: flagged, reminded again.
	if res := scan(t, s, t1.Add(day)); res.Flagged != 0 {
		t.Fatalf("scan a day later: %+v", res)
	}
	res := scan(t, s, t1.Add(time.Hour+31*day))
	if res.Flagged != 2 || res.Listed != 2 {
		t.Fatalf("scan 31 days after the activity: %+v", res)
	}
	if got := staleSince(t, s, moved); got != nil {
		t.Errorf("en instruction flagged at %v", got)
	}
	if n := deliveries(t, s, workflow.MailStaleUsager); n != 6 {
		t.Errorf("%d reminders, want 4 + 2", n)
	}
}

func TestScanStaleOnlyEnConstruction(t *testing.T) {
	t.Parallel()
	s, _, proc, inst := staleSetup(t)
	construction, _ := s.Dossier(proc)
	others := map[string]int64{}
	for _, event := range []string{"", "accepter", "refuser", "classer_sans_suite"} {
		id, _ := s.Dossier(proc)
		if r := s.Event(id, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
			t.Fatalf("event: %d %s", r.StatusCode, r.Body)
		}
		if event != "" {
			if r := s.Event(id, event, inst, "Motivation de la décision."); r.StatusCode != 200 {
				t.Fatalf("%s: %d %s", event, r.StatusCode, r.Body)
			}
		}
		others[event] = id
	}
	res := scan(t, s, t0.Add(365*day))
	if res.Flagged != 1 || staleSince(t, s, construction) == nil {
		t.Fatalf("scan: %+v", res)
	}
	for event, id := range others {
		if got := staleSince(t, s, id); got != nil {
			t.Errorf("dossier after %q flagged at %v", event, got)
		}
	}
}

// TestScanStaleRecipients: followers hear of their dossiers; the dossiers
// nobody follows go to every instructeur of their procedure; each
// instructeur gets one e-mail listing all of its dossiers, whatever its
// notification preference.
func TestScanStaleRecipients(t *testing.T) {
	t.Parallel()
	s, _, p1, i1 := staleSetup(t)
	p2 := s.Procedure()
	i2 := s.Instructeur(p1, "Dominique Bernard")
	i3 := s.Instructeur(p1, "Sacha Petit")
	i4 := s.Instructeur(p2, "Alix Moreau")
	// i1 instructs both procedures.
	s.Must(201, "POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", p2), map[string]any{"email": i1, "nom": "Camille Martin"})
	s.Must(200, "PUT", "/v1/instructeurs/"+i3+"/preferences", map[string]any{"notifications": "none"})

	d1, _ := s.Dossier(p1) // followed by i1
	d2, _ := s.Dossier(p1) // followed by i1 and i2
	d3, _ := s.Dossier(p1) // followed by nobody: i1, i2, i3
	d4, _ := s.Dossier(p2) // followed by nobody: i1, i4
	d5, _ := s.Dossier(p2) // followed by i4
	follow := func(id int64, inst string) {
		s.Must(204, "PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, inst), nil)
	}
	follow(d1, i1)
	follow(d2, i1)
	follow(d2, i2)
	follow(d5, i4)

	res := scan(t, s, t0.Add(40*day))
	if res.Flagged != 5 || res.InstructeurEmails != 4 || res.Listed != 5 {
		t.Fatalf("scan: %+v", res)
	}
	for inst, want := range map[string][]int64{
		i1: {d1, d2, d3, d4},
		i2: {d2, d3},
		i3: {d3},
		i4: {d4, d5},
	} {
		if got := listedDossiers(t, s, inst); !slices.Equal(got, want) {
			t.Errorf("%s: e-mail lists %v, want %v", inst, got, want)
		}
	}
}

// TestScanStaleCrash: a scan killed after its first batch has flagged and
// reminded that batch only; its rerun (the job's retry) flags the rest and
// sends one instructeur e-mail listing all, and no reminder twice.
func TestScanStaleCrash(t *testing.T) {
	t.Parallel()
	s, _, proc, inst := staleSetup(t)
	var ids []int64
	for range 5 {
		id, _ := s.Dossier(proc)
		ids = append(ids, id)
	}
	at := t0.Add(31 * day)
	res, err := jobs.ScanStaleBatched(t.Context(), s.Service, s.River, s.Jobs, at, 2, 1)
	if !errors.Is(err, jobs.ErrCrash) || res.Flagged != 2 {
		t.Fatalf("crashed scan: %+v, %v", res, err)
	}
	if u, i := deliveries(t, s, workflow.MailStaleUsager), deliveries(t, s, workflow.MailStaleInstructeur); u != 2 || i != 0 {
		t.Fatalf("after the crash: %d reminders and %d instructeur e-mails, want 2 and 0", u, i)
	}
	res, err = jobs.ScanStaleBatched(t.Context(), s.Service, s.River, s.Jobs, at, 2, 0)
	if err != nil || res.Flagged != 3 || res.InstructeurEmails != 1 || res.Listed != 5 {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
	if got := listedDossiers(t, s, inst); !slices.Equal(got, ids) {
		t.Errorf("instructeur e-mail lists %v, want %v", got, ids)
	}
	waitJobsDone(t, s)
	if u := deliveries(t, s, workflow.MailStaleUsager); u != 5 {
		t.Errorf("%d reminders, want 5", u)
	}
	if n, err := s.Mailpit.Count(t.Context(), `subject:"toujours en construction"`); err != nil || n != 5 {
		t.Errorf("%d reminders in mailpit (%v), want 5", n, err)
	}

	t.Run("FinishedByTheNextScan", func(t *testing.T) {
		// A scan killed and never retried (a killed scan-stale): the next
		// scan writes its instructeur e-mails.
		d6, _ := s.Dossier(proc) // created at t0 like the others
		t2 := at.Add(day)
		if _, err := jobs.ScanStaleBatched(t.Context(), s.Service, s.River, s.Jobs, t2, 2, 1); !errors.Is(err, jobs.ErrCrash) {
			t.Fatal(err)
		}
		res := scan(t, s, t2.Add(day))
		if res.Recovered != 1 || res.Flagged != 0 || res.InstructeurEmails != 1 || res.Listed != 1 {
			t.Fatalf("next scan: %+v", res)
		}
		msgs := s.Mailpit.WaitFor(t, "to:"+inst+` subject:"sans activité"`, 2, 20*time.Second)
		m, err := s.Mailpit.Message(t.Context(), msgs[0].ID) // newest first
		if err != nil {
			t.Fatal(err)
		}
		if got := dossierNumber.FindAllStringSubmatch(m.Text, -1); len(got) != 1 || got[0][1] != strconv.FormatInt(d6, 10) {
			t.Errorf("recovered e-mail lists %v, want %d", got, d6)
		}
	})
}

// staleLockKey is the scan's advisory lock key (jobs.staleLockKey).
const staleLockKey int64 = 0x61707473

// TestScanStaleNeverWaits: a dossier locked by a transition in progress is
// skipped, not waited for, and flagged by the next scan; a second scan
// while one runs is refused.
func TestScanStaleNeverWaits(t *testing.T) {
	t.Parallel()
	s, _, proc, _ := staleSetup(t)
	locked, _ := s.Dossier(proc)
	free, _ := s.Dossier(proc)

	tx, err := s.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM dossiers WHERE id = $1 FOR UPDATE`, locked); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := jobs.ScanStale(ctx, s.Service, s.River, s.Jobs, t0.Add(31*day))
	if err != nil || res.Flagged != 1 {
		t.Fatalf("scan beside a locked dossier: %+v, %v", res, err)
	}
	if staleSince(t, s, free) == nil {
		t.Error("the free dossier is not flagged")
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := scan(t, s, t0.Add(32*day)); res.Flagged != 1 || staleSince(t, s, locked) == nil {
		t.Fatalf("next scan: %+v", res)
	}

	t.Run("OneScanAtATime", func(t *testing.T) {
		conn, err := s.Pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, staleLockKey); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, staleLockKey) //nolint:errcheck
		if _, err := jobs.ScanStale(t.Context(), s.Service, s.River, s.Jobs, t0.Add(33*day)); !errors.Is(err, jobs.ErrScanRunning) {
			t.Fatalf("scan while another runs: %v", err)
		}
	})
}

// TestScanStalePeriodic: the cron job, registered on a River client, runs
// scans on its schedule (every second here), each as of its run time.
func TestScanStalePeriodic(t *testing.T) {
	t.Parallel()
	sched, err := cron.ParseStandard("@every 1s")
	if err != nil {
		t.Fatal(err)
	}
	s := apptest.Start(t, apptest.Options{Jobs: jobs.Config{
		PeriodicJobs: []*river.PeriodicJob{jobs.NewScanStalePeriodicJob(sched)},
	}})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)
	// Created 40 days ago: the first scan flags it.
	if _, err := s.Pool.Exec(t.Context(), `UPDATE dossiers SET last_activity_at = now() - interval '40 days' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if got := listedDossiers(t, s, inst); !slices.Equal(got, []int64{id}) {
		t.Fatalf("instructeur e-mail lists %v", got)
	}
	// Two finished scans (the one on start and at least one scheduled),
	// one scan_stale job per run time; the dossier flagged once.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var scans, jobsRun, distinct int
		err := s.Pool.QueryRow(t.Context(), `
			SELECT (SELECT count(*) FROM stale_scans WHERE finished_at IS NOT NULL),
				count(*), count(DISTINCT args->>'at')
			FROM river_job WHERE kind = 'scan_stale' AND state = 'completed'`).Scan(&scans, &jobsRun, &distinct)
		if err != nil {
			t.Fatal(err)
		}
		if scans >= 2 && jobsRun >= 2 {
			if distinct != jobsRun {
				t.Fatalf("%d scan jobs for %d run times", jobsRun, distinct)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scans finished, %d jobs completed after 20s", scans, jobsRun)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := deliveries(t, s, workflow.MailStaleUsager); n != 1 {
		t.Errorf("%d reminders, want 1", n)
	}
}

// TestScanStaleListCapped: an instructeur's stale e-mail lists
// StaleListMax dossiers, the first by number, and counts the others, in its
// subject and under the list; a scan with fewer lists them all.
func TestScanStaleListCapped(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	s := apptest.Start(t, apptest.Options{Now: c.Now, Jobs: jobs.Config{StaleListMax: 2}})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	var ids []int64
	for range 5 {
		id, _ := s.Dossier(proc)
		ids = append(ids, id)
	}
	if res := scan(t, s, t0.Add(40*day)); res.Flagged != 5 || res.InstructeurEmails != 1 || res.Listed != 5 {
		t.Fatalf("scan: %+v", res)
	}
	if got := listedDossiers(t, s, inst); !slices.Equal(got, ids[:2]) {
		t.Errorf("e-mail lists %v, want the first two of %v", got, ids)
	}
	msgs := s.Mailpit.WaitFor(t, "to:"+inst+` subject:"sans activité"`, 1, 20*time.Second)
	if want := "5 dossiers en construction sans activité"; !strings.HasPrefix(msgs[0].Subject, want) {
		t.Errorf("subject %q, want it to start with %q", msgs[0].Subject, want)
	}
	m, err := s.Mailpit.Message(t.Context(), msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	const more = "et 3 autres dossiers dans la même situation"
	if !strings.Contains(m.Text, more) || !strings.Contains(m.HTML, more) {
		t.Errorf("neither the text nor the HTML says %q:\n%s", more, m.Text)
	}
}

// TestScanStaleClock: the scan stamps what it writes with the times it is
// given, never with the database's now(): the dossier's stale_since and its
// history row carry the time the scan runs as of; the reminder, the
// instructeur e-mail and the scan's bookkeeping carry the Service's clock,
// set here apart from both (a scan run, or retried, long after its time).
func TestScanStaleClock(t *testing.T) {
	t.Parallel()
	s, c, proc, _ := staleSetup(t)
	id, _ := s.Dossier(proc)
	at := t0.Add(31 * day)
	now := time.Date(2031, 1, 2, 3, 4, 5, 678901000, time.UTC)
	c.Set(now)
	if res := scan(t, s, at); res.Flagged != 1 || res.InstructeurEmails != 1 {
		t.Fatalf("scan: %+v", res)
	}

	var historyAt time.Time
	if err := s.Pool.QueryRow(t.Context(), `
		SELECT at FROM dossier_history WHERE dossier_id = $1 AND event = 'signaler_inactif'`, id).Scan(&historyAt); err != nil {
		t.Fatal(err)
	}
	if !historyAt.Equal(at) {
		t.Errorf("history row at %v, want the scan's time %v", historyAt, at)
	}
	if got := staleSince(t, s, id); got == nil || !got.Equal(at) {
		t.Errorf("stale_since = %v, want %v", got, at)
	}

	rows, err := s.Pool.Query(t.Context(), `
		SELECT kind, created_at FROM email_deliveries WHERE kind IN ($1, $2) ORDER BY id`,
		workflow.MailStaleUsager, workflow.MailStaleInstructeur)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var kind string
	var created time.Time
	if _, err := pgx.ForEachRow(rows, []any{&kind, &created}, func() error {
		kinds = append(kinds, kind)
		if !created.Equal(now) {
			t.Errorf("%s delivery created at %v, want the clock's %v", kind, created, now)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{workflow.MailStaleUsager, workflow.MailStaleInstructeur}; !slices.Equal(kinds, want) {
		t.Errorf("deliveries %v, want %v", kinds, want)
	}

	var started, finished time.Time
	if err := s.Pool.QueryRow(t.Context(), `SELECT started_at, finished_at FROM stale_scans WHERE scanned_at = $1`, at).Scan(&started, &finished); err != nil {
		t.Fatal(err)
	}
	if !started.Equal(now) || !finished.Equal(now) {
		t.Errorf("scan started at %v and finished at %v, want the clock's %v", started, finished, now)
	}
}
