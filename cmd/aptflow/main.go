// Command aptflow is the one binary of aptflow: the API, the workers, the
// dashboard and the ops commands. See `aptflow help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // the zones of CRON_TZ and workflow.Paris, never a silent UTC for want of the system's tzdata

	"github.com/aptflow/aptflow/migrations"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful stop, which may take up to
	// SHUTDOWN_TIMEOUT; a second one kills at once, as the default handler.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "aptflow:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `aptflow — the background workflow worker of the APT procedure.

Usage:
  aptflow serve                      API, workers and dashboard
  aptflow work                       workers only (to scale out)
  aptflow migrate                    apply the database migrations (idempotent)
  aptflow token create NAME [--scope admin|instruction|depot|lecture]
                [--procedure ID]... [--expires DURATION]
                                     create an API token; prints it alone on stdout
  aptflow token list                 the tokens (never the tokens themselves)
  aptflow token revoke ID|NAME       revoke a token: refused everywhere within 2 s
  aptflow scan-stale [--now RFC3339] flag stale dossiers now, as the cron would
  aptflow send-digests [--now RFC3339]
                                     send the due daily digests now
  aptflow purge [--now RFC3339]      run the purge (RGPD) now, as the cron would; prints its counts
  aptflow demo [--url URL --token T] create demo data through the real API
  aptflow dkim-record                print the DNS record of the DKIM key
                                     (DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY)

Configuration is read from the environment: see README.md.
` + "`aptflow COMMAND --help` says more of each command.\n"

// commandHelp is each command's help, which `aptflow COMMAND --help` (or
// `aptflow help COMMAND`) prints before reading the configuration: help
// needs no database.
var commandHelp = map[string]string{
	"serve": `usage: aptflow serve

The API, the workers, River UI (/riverui/) and the metrics (/metrics), on
HTTP_ADDR, until SIGTERM or SIGINT (then running jobs get SHUTDOWN_TIMEOUT
to finish). Needs DATABASE_URL, migrated (aptflow migrate).
`,
	"work": `usage: aptflow work

The workers only, to add capacity beside serve on the same database; with
METRICS_ADDR, /healthz, /readyz and /metrics there. Needs DATABASE_URL.
`,
	"migrate": `usage: aptflow migrate

Applies aptflow's and River's migrations to DATABASE_URL. Idempotent, safe
to run from several processes at once, and while older processes still run.
`,
	"token": `usage: aptflow token create NAME [--scope admin|instruction|depot|lecture] [--procedure ID]... [--expires DURATION]
       aptflow token list
       aptflow token revoke ID|NAME

create makes an API token and prints it alone on stdout (only its hash is
stored): admin on every procedure unless --scope and --procedure narrow it.
list shows the tokens, never the tokens themselves; revoke refuses one
everywhere within 2 seconds. Needs DATABASE_URL.
`,
	"scan-stale": `usage: aptflow scan-stale [--now RFC3339]

One stale scan as of --now (default: now), as STALE_SCAN_CRON runs it; its
e-mails are queued for the workers of serve or work. Needs DATABASE_URL.
`,
	"send-digests": `usage: aptflow send-digests [--now RFC3339]

The daily digests due as of --now (default: now), as DIGEST_CRON sends them;
queued for the workers of serve or work. Needs DATABASE_URL.
`,
	"demo": `usage: aptflow demo [--url URL] [--token TOKEN]

Creates a demo through the API of a running aptflow: a procedure, two
instructeurs, four dossiers; then prints where to look. The server is --url,
else PUBLIC_URL, else http://HTTP_ADDR (the environment of the server:
` + "`make run`" + ` prints the command to copy); the token is --token, else
APTFLOW_TOKEN, else one created in DATABASE_URL.
`,
	"purge": `usage: aptflow purge [--now RFC3339]

One purge (RGPD) as of --now (default: now), as PURGE_CRON runs it: forgets
the idempotency keys older than IDEMPOTENCY_TTL, queues the notices of the
dossiers expiring within RETENTION_NOTICE for the workers of serve or work,
and erases the personal data of the expired dossiers, leaving their
tombstones; prints its counts (docs/DATA.md). Needs DATABASE_URL.
`,
	"dkim-record": `usage: aptflow dkim-record

Prints the DNS TXT record that publishes the DKIM public key, as a zone-file
line, from DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY alone (no
database): publish it before turning signing on.
`,
}

// wantsHelp reports whether a command's arguments ask for its help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// runDKIMRecord prints the TXT record that publishes the DKIM public key,
// as a zone-file line, from the DKIM variables alone (no database): ops
// publish it before they turn signing on.
func runDKIMRecord(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 0 {
		fmt.Fprint(stderr, "usage: aptflow dkim-record (reads DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY)\n")
		return errUsage
	}
	d, _, err := loadDKIM(getenv)
	if err != nil {
		return err
	}
	if d == nil {
		return errors.New("dkim-record: set DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY (a PEM key, e.g. from `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`)")
	}
	fmt.Fprintln(stdout, d.ZoneRecord())
	return nil
}

// run is the whole program, testable: it reads its arguments and
// environment from parameters and returns when ctx is cancelled or the
// command is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	if len(args) == 2 && args[0] == "help" && commandHelp[args[1]] != "" {
		args = []string{args[1], "--help"}
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	cmd, rest := args[0], args[1:]
	// Before the configuration: a typo must not read as a missing
	// DATABASE_URL, nor must a question.
	if commandHelp[cmd] == "" {
		fmt.Fprintf(stderr, "aptflow: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
	if wantsHelp(rest) {
		fmt.Fprint(stdout, commandHelp[cmd])
		return nil
	}
	switch cmd {
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "dkim-record":
		return runDKIMRecord(rest, getenv, stdout, stderr)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	// An error names what failed, sometimes with the connection string:
	// never with a secret of the configuration.
	defer func() { err = cfg.redactor().Error(err) }()
	log := newLogger(cfg, stderr)
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log, true)
	case "work":
		return serve(ctx, cfg, log, false)
	case "migrate":
		pool, err := openPool(ctx, cfg, 4)
		if err != nil {
			return err
		}
		defer pool.Close()
		res, err := migrations.Up(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrated: %d aptflow and %d River migrations applied\n", len(res.App), len(res.River))
		return nil
	case "token":
		return runToken(ctx, cfg, rest, stdout, stderr)
	case "scan-stale", "send-digests", "purge":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		nowFlag := fs.String("now", "", "the time to run as (RFC 3339); default: now")
		if err := fs.Parse(rest); err != nil {
			return errUsage
		}
		now := time.Now()
		if *nowFlag != "" {
			if now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
				return fmt.Errorf("--now: RFC 3339 time expected (2026-11-26T06:00:00+01:00): %w", err)
			}
		}
		return runOnce(ctx, cfg, log, cmd, now, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return errUsage
	}
}
