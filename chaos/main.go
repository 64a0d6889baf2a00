// Command chaos is aptflow's fault suite: it starts the real stack, breaks
// it in the ways production breaks, and checks that nothing was lost.
//
// The stack, all on loopback and all its own:
//
//   - a throwaway PostgreSQL cluster (scripts/local-postgres.sh, port 5433,
//     in a fresh directory) with a fresh database aptflow_chaos;
//   - a mailpit on free ports, with chaos enabled (--enable-chaos);
//   - an SMTP relay in this process (emersion/go-smtp) between aptflow and
//     mailpit: it passes every command through and answers with mailpit's
//     reply, and injects the faults mailpit cannot (a 550 for chosen
//     recipients, a connection dropped during DATA);
//   - the real binaries: `aptflow serve` (API and workers) and `aptflow work`
//     (workers only, the one that gets killed).
//
// The faults, one after the other, each under load through the HTTP API:
//
//   - kill: `kill -9` of the work process several times during a burst of
//     acceptances, restarting it each time;
//   - smtp-451: mailpit answers 451 to every MAIL FROM for tens of seconds;
//   - smtp-drop: the relay drops the connection during DATA for a while;
//   - smtp-550: the relay refuses some recipients with 550;
//   - postgres: the cluster is restarted (fast shutdown) under load;
//   - webhook-kill: `kill -9` of the work process several times while
//     webhooks go to a receiver in this process (which verifies each with
//     the Standard Webhooks reference library).
//
// For each it counts, from the delivery log and mailpit's messages (matched
// by their deterministic Message-ID), or the webhook delivery log and the
// receiver's requests (matched by webhook-id): deliveries made, lost,
// duplicated, and the time to recover. At the end it looks for every name and address
// it used in every aptflow log line. It prints a table and, with -doc,
// rewrites the generated section of docs/RELIABILITY.md; it exits 1 if
// anything was lost or a check failed. `make chaos` builds the binary and
// runs it; the run takes a few minutes and stops by itself, leaving no
// process and no cluster behind.
//
// This is a test tool, not part of the product: it is not a subcommand of
// aptflow.
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

// options are chaos's flags.
type options struct {
	aptflow    string
	mailpit    string
	pgPort     int
	dir        string // logs of the run, kept
	doc        string
	command    string
	kills      int
	accept     int
	acceptRate float64
	mails      int
	outage     time.Duration
	drop       time.Duration
	pgLoad     int
	pgDown     time.Duration
	deadline   time.Duration
	faults     string // comma-separated fault names to run; empty: all
}

func main() { harness.Main("chaos", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.aptflow, "aptflow", "bin/aptflow", "the aptflow binary to run (make build)")
	fs.StringVar(&o.mailpit, "mailpit", os.Getenv("MAILPIT"), "the mailpit binary (scripts/ensure-mailpit.sh prints it)")
	fs.IntVar(&o.pgPort, "pg-port", 5433, "port of the throwaway PostgreSQL cluster")
	fs.StringVar(&o.dir, "dir", "var/chaos", "where the logs of the run go (kept after it)")
	fs.StringVar(&o.doc, "doc", "", "rewrite the generated section of this Markdown file (docs/RELIABILITY.md)")
	fs.IntVar(&o.kills, "kills", 4, "kill -9 of the work process during the acceptance burst")
	fs.IntVar(&o.accept, "accept", 400, "acceptances of the kill fault")
	fs.Float64Var(&o.acceptRate, "accept-rate", 20, "acceptances per second of the kill fault")
	fs.IntVar(&o.mails, "mails", 150, "e-mails of each SMTP outage fault")
	fs.DurationVar(&o.outage, "outage", 30*time.Second, "length of the SMTP 451 outage")
	fs.DurationVar(&o.drop, "drop", 20*time.Second, "how long the relay drops connections during DATA")
	fs.IntVar(&o.pgLoad, "pg-load", 300, "transitions of the PostgreSQL restart fault")
	fs.DurationVar(&o.pgDown, "pg-down", 5*time.Second, "how long PostgreSQL stays stopped in its restart")
	fs.DurationVar(&o.deadline, "deadline", 12*time.Minute, "the whole run stops after this")
	fs.StringVar(&o.faults, "faults", "", "run only these faults, comma-separated (kill, smtp-451, smtp-drop, smtp-550, postgres, webhook-kill)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.mailpit == "" {
		return errors.New("-mailpit (or MAILPIT) is required: make chaos installs it")
	}
	o.command = strings.TrimSpace("go run ./chaos " + strings.Join(args, " "))
	if cmd := os.Getenv("CHAOS_COMMAND"); cmd != "" {
		o.command = cmd
	}

	// Bounded whatever happens: a stuck fault must not hang `make chaos`.
	ctx, cancel := context.WithTimeout(ctx, o.deadline)
	defer cancel()

	r := &runner{o: o, out: stdout, log: stderr}
	rep, err := r.run(ctx)
	if rep != nil {
		text := rep.markdown()
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, text)
		// An interrupted run is not a result: the page keeps the last one.
		if o.doc != "" && ctx.Err() == nil {
			if werr := harness.WriteSection(o.doc, "chaos", text); werr != nil {
				return errors.Join(err, werr)
			}
			fmt.Fprintf(stderr, "chaos: wrote the generated section of %s\n", o.doc)
		}
		if err == nil && !rep.ok() {
			err = errors.New("a fault lost work or a check failed: see the table")
		}
	}
	return err
}
