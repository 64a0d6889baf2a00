// Command bench measures aptflow on this machine, each figure side by side
// with the ceiling it is judged against, in one run:
//
//   - transitions/s through the HTTP API (16 clients, passer_en_instruction
//     with its e-mail) against the same SQL done by raw pgx;
//   - acceptances/s end to end (accepter → PDF → e-mail → accepted by
//     mailpit) against each stage alone: PDF renders/s in-process, and
//     mailpit's ingest/s of the same message sent by the project's mailer;
//   - e-mail latency, HTTP 200 → mailpit's Created, at light load and at 80 %
//     of the maximum e-mail rate measured;
//   - transitions/s on a procedure with one webhook subscriber against the
//     same without, in alternating rounds; the rate of webhooks delivered,
//     and their latency, HTTP 200 → the receiver (in the bench, which
//     verifies each with the Standard Webhooks reference library);
//   - the aptflow process's peak RSS.
//
// It starts the real stack: a fresh database (aptflow_bench) on the
// PostgreSQL given by -admin-url, a mailpit on free loopback ports, and the
// `aptflow serve` binary given by -aptflow with SMTP_URL pointing at mailpit.
// Everything stays on loopback, every phase is bounded in time, and the run
// stops by itself (about three minutes). `make bench` builds the binary,
// finds PostgreSQL and mailpit, and runs this; it prints a table and, with
// -doc, rewrites the generated section of docs/PERFORMANCE.md.
//
// This is a measuring tool, not part of the product: it is not a subcommand
// of aptflow and asserts nothing. The targets are printed next to the
// figures; meeting them is judged by reading the table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// options are the bench's flags.
type options struct {
	adminURL   string
	aptflow    string
	mailpit    string
	clients    int
	duration   time.Duration // of each closed-loop throughput phase
	stage      time.Duration // of each stage measured alone
	latency    time.Duration // of each latency phase
	lightRate  float64
	heavyRate  float64 // 0: 80 % of the e-mail maximum measured
	accept     int
	doc        string
	profileDir string
	keep       bool
	database   string   // created and dropped by the run
	env        []string // aptflow's configuration beyond the stack's
	phases     string   // comma-separated phase names to run; empty: all
	command    string   // how the run was started, for the report
}

func main() { harness.Main("bench", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "scale" {
		return runScale(ctx, args[1:], stdout, stderr)
	}
	o := options{database: benchDB}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.adminURL, "admin-url", os.Getenv("BENCH_ADMIN_URL"), "PostgreSQL URL of a role that may create databases (scripts/ensure-postgres.sh prints one)")
	fs.StringVar(&o.aptflow, "aptflow", "bin/aptflow", "the aptflow binary to run (make build)")
	fs.StringVar(&o.mailpit, "mailpit", os.Getenv("MAILPIT"), "the mailpit binary (scripts/ensure-mailpit.sh prints it)")
	fs.IntVar(&o.clients, "clients", 16, "concurrent HTTP clients of the throughput phases")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of the transition phases (SQL ceiling, HTTP)")
	fs.DurationVar(&o.stage, "stage", 5*time.Second, "length of each stage measured alone (PDF, mailpit)")
	fs.DurationVar(&o.latency, "latency", 15*time.Second, "length of each e-mail latency phase")
	fs.Float64Var(&o.lightRate, "light-rate", 5, "transitions/s of the light-load latency phase")
	fs.Float64Var(&o.heavyRate, "heavy-rate", 0, "transitions/s of the second latency phase (default: 80 % of the e-mail maximum the transitions phase measured)")
	fs.IntVar(&o.accept, "accept", 1500, "acceptances of the end-to-end phase")
	fs.StringVar(&o.doc, "doc", "", "rewrite the generated section of this Markdown file (docs/PERFORMANCE.md)")
	fs.StringVar(&o.profileDir, "pprof", "", "save CPU profiles of aptflow during the HTTP and end-to-end phases into this directory (needs /debug/pprof/)")
	fs.BoolVar(&o.keep, "keep", false, "keep the database aptflow_bench after the run")
	fs.StringVar(&o.phases, "phases", "", "run only these phases, comma-separated (ceiling, transitions, stages, acceptances, latency, webhooks), to iterate on one; the latency at 80 % needs transitions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.adminURL == "" {
		return errors.New("-admin-url (or BENCH_ADMIN_URL) is required: make bench finds one")
	}
	if o.mailpit == "" {
		return errors.New("-mailpit (or MAILPIT) is required: make bench installs it")
	}
	o.command = strings.TrimSpace("make bench  # go run ./bench " + strings.Join(args, " "))
	if cmd := os.Getenv("BENCH_COMMAND"); cmd != "" {
		o.command = cmd
	}

	// The whole run has a deadline: a stuck phase must not hang `make bench`.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	b := &bench{o: o, log: stderr}
	rep, err := b.run(ctx)
	if rep != nil {
		table := rep.table()
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, table)
		if o.doc != "" {
			if werr := harness.WriteSection(o.doc, "bench", table); werr != nil {
				return errors.Join(err, werr)
			}
			fmt.Fprintf(stderr, "bench: wrote the measured section of %s\n", o.doc)
		}
	}
	return err
}
