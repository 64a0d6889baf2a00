package jobs

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// TestCronOverdue: a run is overdue from the time its schedule asked for it
// until a run of that time (or a later one) succeeds; a run due before the
// cron was registered never is.
func TestCronOverdue(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	parse := func(spec string) river.PeriodicSchedule {
		s, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ptr := func(v time.Time) *time.Time { return &v }
	daily := Cron{Name: "scan_stale", Schedule: parse("CRON_TZ=Europe/Paris 0 6 * * *")}
	weekdays := Cron{Name: "send_digests", Schedule: parse("CRON_TZ=Europe/Paris 0 9 * * 1-5")}
	for name, tc := range map[string]struct {
		cron Cron
		run  cronRun
		now  string
		want time.Duration
	}{
		"Done":               {daily, cronRun{at("2026-01-01 10:00"), ptr(at("2026-11-30 06:00"))}, "2026-11-30 12:00", 0},
		"Missed":             {daily, cronRun{at("2026-01-01 10:00"), ptr(at("2026-11-29 06:00"))}, "2026-11-30 08:30", 150 * time.Minute},
		"NeverRan":           {daily, cronRun{at("2026-01-01 10:00"), nil}, "2026-11-30 06:10", 10 * time.Minute},
		"DueBeforeInstalled": {daily, cronRun{at("2026-11-30 10:00"), nil}, "2026-11-30 12:00", 0},
		"NotRegistered":      {daily, cronRun{}, "2026-11-30 12:00", 0},
		"Weekend":            {weekdays, cronRun{at("2026-01-01 10:00"), ptr(at("2026-11-27 09:00"))}, "2026-11-29 20:00", 0},
		"MondayMissed":       {weekdays, cronRun{at("2026-01-01 10:00"), ptr(at("2026-11-27 09:00"))}, "2026-11-30 11:00", 2 * time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			if got := tc.cron.overdue(tc.run, at(tc.now)); got != tc.want {
				t.Errorf("overdue %s, want %s", got, tc.want)
			}
		})
	}
}

// TestCronRuns: a cron job's successful runs are recorded in cron_runs by
// the River client's hook, under the cron's name and with the run time it
// stood for, and the collector shows them; a failing run is not recorded,
// and shows as overdue.
func TestCronRuns(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	every, err := cron.ParseStandard("0 * * * *") // hourly: a slot that stays put
	if err != nil {
		t.Fatal(err)
	}
	crons := []Cron{{Name: "tick", Schedule: every}, {Name: "broken", Schedule: every}}
	if err := RegisterCrons(ctx, pool, crons); err != nil {
		t.Fatal(err)
	}
	// Registered a day ago: the runs due since count.
	if _, err := pool.Exec(ctx, `UPDATE cron_runs SET registered_at = now() - interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[tickArgs]) error { return nil }))
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[brokenArgs]) error {
		return river.JobCancel(io.ErrUnexpectedEOF)
	}))
	client, err := NewClient(pool, Config{Logger: log, FetchPollInterval: 50 * time.Millisecond, PeriodicJobs: []*river.PeriodicJob{
		NewCronJob("tick", every, func(slot time.Time) river.JobArgs { return tickArgs{At: slot} }),
		NewCronJob("broken", every, func(slot time.Time) river.JobArgs { return brokenArgs{At: slot} }),
	}}, workers)
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobCancelled)
	defer cancel()
	// Both run on start, for the last run time of the schedule (River's
	// leader is this client).
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	var slot time.Time
	for seen := 0; seen < 2; seen++ {
		select {
		case e := <-done:
			if e.Job.Kind == "tick" {
				slot = e.Job.ScheduledAt
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the cron jobs did not run on start")
		}
	}
	// The hook records after the work, before River completes the job:
	// wait for the row rather than assume.
	var last *time.Time
	deadline := time.Now().Add(10 * time.Second)
	for last == nil && time.Now().Before(deadline) {
		if err := pool.QueryRow(ctx, `SELECT last_run_at FROM cron_runs WHERE name = 'tick'`).Scan(&last); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := canonicalTime(previousRun(every, time.Now()))
	if last == nil || !last.Equal(want) {
		t.Fatalf("tick's last run %v, want its slot %v (job scheduled at %v)", last, want, slot)
	}
	var broken *time.Time
	if err := pool.QueryRow(ctx, `SELECT last_run_at FROM cron_runs WHERE name = 'broken'`).Scan(&broken); err != nil || broken != nil {
		t.Fatalf("broken's failed run recorded: %v %v", broken, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewQueueCollector(pool, time.Millisecond, log).WithCrons(crons))
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetName() == "cron" {
				got[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	if got["aptflow_cron_overdue_seconds/tick"] != 0 || got["aptflow_cron_last_success_timestamp_seconds/tick"] != float64(want.UnixMilli())/1000 {
		t.Errorf("tick: %v", got)
	}
	if got["aptflow_cron_overdue_seconds/broken"] <= 0 {
		t.Errorf("broken: overdue %v, want > 0", got["aptflow_cron_overdue_seconds/broken"])
	}
	if _, ok := got["aptflow_cron_last_success_timestamp_seconds/broken"]; ok {
		t.Errorf("broken has a last success: %v", got)
	}
}

type tickArgs struct {
	At time.Time `json:"at"`
}

func (tickArgs) Kind() string { return "tick" }
func (tickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type brokenArgs struct {
	At time.Time `json:"at"`
}

func (brokenArgs) Kind() string { return "broken" }
func (brokenArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}
