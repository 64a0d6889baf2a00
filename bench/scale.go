package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// `go run ./bench scale` (make bench-scale) measures aptflow as a national
// instance: one database serving 100 procedures, one of which holds half
// the dossiers, the others a few thousand each, beside a small procedure of
// a few dozen created through the API. At each size (0, 200,000 and
// 2,000,000 dossiers by default) it seeds the dossiers by SQL, with what
// their life left behind (history, follows, e-mails, messages,
// attestations), then measures p50 and p99 of every read and write route of
// the API, one request at a time, for the small procedure and for the big
// one. At the largest size it measures how long a decision e-mail takes
// while a stale scan's 50,000 reminders are queued, and prints the plans of
// the tabs' queries. Like make bench, it asserts nothing: the targets are
// printed next to the figures.

// scaleDB is the database bench-scale creates, and drops, on each run.
const scaleDB = "aptflow_scale"

// scaleOptions are bench-scale's flags.
type scaleOptions struct {
	options
	sizes     []int // dossiers at each measured stage, ascending
	reads     int   // samples of each read route, per procedure and stage
	writes    int   // samples of each write route, per procedure and stage
	reminders int   // stale reminders queued before the decisions
	decisions int   // decisions per procedure while they are queued
	vacuum    bool  // VACUUM ANALYZE after seeding, as autovacuum would in time
}

// scaleEnv is aptflow's configuration during bench-scale: no cron fires
// during the run (the stale scan runs when the bench says), and the
// verification page's rate limit sees each request as a new client, from
// X-Forwarded-For, so that it measures the page and not the limiter.
var scaleEnv = []string{
	"STALE_SCAN_CRON=CRON_TZ=Europe/Paris 0 3 29 2 *",
	"DIGEST_CRON=CRON_TZ=Europe/Paris 0 3 29 2 *",
	"TRUSTED_PROXIES=127.0.0.1",
}

func runScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := scaleOptions{options: options{database: scaleDB, env: scaleEnv, clients: 4}}
	fs := flag.NewFlagSet("bench scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.adminURL, "admin-url", os.Getenv("BENCH_ADMIN_URL"), "PostgreSQL URL of a role that may create databases (scripts/ensure-postgres.sh prints one)")
	fs.StringVar(&o.aptflow, "aptflow", "bin/aptflow", "the aptflow binary to run (make build)")
	fs.StringVar(&o.mailpit, "mailpit", os.Getenv("MAILPIT"), "the mailpit binary (scripts/ensure-mailpit.sh prints it)")
	sizes := fs.String("sizes", "0,200000,2000000", "dossiers at each stage, ascending, comma-separated")
	fs.IntVar(&o.reads, "reads", 200, "samples of each read route, per procedure and stage")
	fs.IntVar(&o.writes, "writes", 150, "samples of each write route, per procedure and stage (a third of them for each decision)")
	fs.IntVar(&o.reminders, "reminders", 50_000, "stale reminders queued before the decisions, at the last stage (0: none)")
	fs.IntVar(&o.decisions, "decisions", 10, "acceptances per procedure while the reminders are queued")
	fs.BoolVar(&o.vacuum, "vacuum", true, "VACUUM ANALYZE the seeded tables, as autovacuum would in time; false measures them as a bulk load leaves them (no statistics, hint bits or visibility map)")
	fs.StringVar(&o.doc, "doc", "", "rewrite the generated section of this Markdown file (docs/PERFORMANCE.md)")
	fs.BoolVar(&o.keep, "keep", false, "keep the database "+scaleDB+" after the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || (len(o.sizes) > 0 && n < o.sizes[len(o.sizes)-1]) {
			return fmt.Errorf("-sizes: ascending numbers of dossiers expected, got %q", *sizes)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.adminURL == "" || o.mailpit == "" {
		return errors.New("-admin-url and -mailpit (or BENCH_ADMIN_URL and MAILPIT) are required: make bench-scale finds them")
	}
	o.command = strings.TrimSpace("make bench-scale  # go run ./bench scale " + strings.Join(args, " "))
	if cmd := os.Getenv("BENCH_COMMAND"); cmd != "" {
		o.command = cmd
	}
	// Seeding two million dossiers takes minutes on a shared machine.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Hour)
	defer cancel()

	sc := &scale{o: o, log: stderr}
	rep, err := sc.run(ctx)
	if rep != nil {
		table := rep.table()
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, table)
		if o.doc != "" {
			if werr := harness.WriteSection(o.doc, "bench-scale", table); werr != nil {
				return errors.Join(err, werr)
			}
			fmt.Fprintf(stderr, "bench-scale: wrote the measured section of %s\n", o.doc)
		}
	}
	return err
}

// scale runs bench-scale.
type scale struct {
	o   scaleOptions
	log io.Writer
	s   *stack

	small, big procedure
	medium     []int64 // the other procedures, seeded by SQL
	seeded     int     // dossiers seeded by SQL so far
}

// procedure is one of the two measured procedures, with the instructeur
// whose tabs are read.
type procedure struct {
	Name        string
	ID          int64
	Instructeur string
	Webhook     int64 // its subscription to its state changes
}

func (sc *scale) logf(format string, args ...any) {
	fmt.Fprintf(sc.log, "bench-scale: "+format+"\n", args...)
}

// run measures every stage and returns the report, partial if a stage
// failed.
func (sc *scale) run(ctx context.Context) (*scaleReport, error) {
	rep := &scaleReport{Command: sc.o.command, Started: time.Now(), Revision: revision()}
	s, m, err := startMeasured(ctx, sc.o.options, sc.logf)
	if err != nil {
		return nil, err
	}
	defer s.close()
	sc.s, rep.Machine = s, m
	if err := sc.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	for i, size := range sc.o.sizes {
		st := &scaleStage{Size: size, Samples: map[string][]time.Duration{}}
		rep.Stages = append(rep.Stages, st)
		if err := sc.grow(ctx, size, st); err != nil {
			return rep, fmt.Errorf("seed %d dossiers: %w", size, err)
		}
		sc.logf("stage %d dossiers: measuring", size)
		if err := sc.measure(ctx, st); err != nil {
			st.Notes = append(st.Notes, err.Error())
			sc.logf("stage %d: %v", size, err)
		}
		if i == len(sc.o.sizes)-1 {
			if rep.Plans, err = sc.plans(ctx); err != nil {
				rep.Notes = append(rep.Notes, "plans: "+err.Error())
			}
			if sc.o.reminders > 0 {
				if rep.Mail, err = sc.decisionsBehindBulk(ctx); err != nil {
					rep.Notes = append(rep.Notes, "decisions while reminders are queued: "+err.Error())
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	if rep.RSS, err = s.vmHWM(); err != nil {
		rep.Notes = append(rep.Notes, "peak RSS: "+err.Error())
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.Machine.LoadAfter = harness.LoadAverage()
	return rep, nil
}

// call sends a request that must answer want and returns its body.
func (sc *scale) call(ctx context.Context, want int, method, path string, in any, header http.Header) ([]byte, error) {
	status, _, body, err := sc.s.api.DoWith(ctx, method, path, in, header)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status != want {
		return nil, fmt.Errorf("%s %s: %d, want %d: %.300s", method, path, status, want, body)
	}
	return body, nil
}

// waitIdle waits until no job of the measured queues is pending, so that a
// stage's seeding does not share the cores with the last one's e-mails.
func (sc *scale) waitIdle(ctx context.Context, timeout time.Duration) error {
	return harness.WaitFor(ctx, nil, timeout, func(ctx context.Context) error {
		var n int
		if err := sc.s.pool.QueryRow(ctx, `
			SELECT count(*) FROM river_job
			WHERE state IN ('available', 'running', 'retryable', 'pending')
				AND queue = ANY($1)`, []string{"email", "email_bulk", "attestation", "notification"}).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d jobs pending", n)
		}
		return nil
	})
}

// percentiles returns p50 and p99 of ds.
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	return percentile(ds, 50), percentile(ds, 99)
}
