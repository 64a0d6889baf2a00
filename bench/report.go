package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// revision is the working tree's commit, saying so when it has uncommitted
// changes, or "an unknown revision" outside git.
func revision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "an unknown revision"
	}
	rev := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " with uncommitted changes"
	}
	return rev
}

// namedCPU is the CPU use of one phase.
type namedCPU struct {
	Name string
	Use  cpuUse
}

// latencyResult is the e-mail latency of one phase.
type latencyResult struct {
	Rate    float64         // transitions started per second
	Samples []time.Duration // HTTP 200 → mailpit's Created, one per e-mail
}

// report is everything one run measured.
type report struct {
	Command  string
	Revision string // of the working tree aptflow was built from
	Machine  harness.Machine
	Started  time.Time
	Elapsed  time.Duration
	Clients  int

	Ceiling          loadResult // SQL of a transition, notifying as River does
	Ceiling2         loadResult // the same, measured again after the HTTP bursts
	CeilingNotifyAll loadResult // the same with pg_notify in every transaction
	HTTP             loadResult // passer_en_instruction through the API
	HTTPPaused       loadResult // the same, the e-mail queue paused
	HTTPMailRate     float64    // their e-mails, end to end

	RenderRate    float64
	RenderWorkers int
	RenderCPU     cpuUse // the bench renders: its CPU is the stage's
	IngestRate    float64
	IngestWorkers int
	IngestCPU     cpuUse
	AcceptCPU     cpuUse

	AcceptHTTP loadResult // the accepter requests
	AcceptN    int
	AcceptRate float64 // end to end, until mailpit holds every e-mail

	Light, Heavy latencyResult
	HeavyRateSet bool // by -heavy-rate, not 80 % of the maximum

	// The webhooks phase: rounds on the procedure without a subscriber and
	// on the one with, the webhook rate of each round with, the latencies,
	// and the requests the receiver could not verify.
	PlainHTTP, WebhookHTTP     []loadResult
	WebhookRates               []float64
	WebhookLight, WebhookHeavy latencyResult
	WebhookUnverified          int
	RSS                        int64

	// CPU is where the CPU went during some phases, by phase name.
	CPU []namedCPU

	Notes []string
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64)
}

// table renders the report in Markdown: readable in a terminal, and
// pasted as is into docs/PERFORMANCE.md.
func (r *report) table() string {
	var b strings.Builder
	runHeader(&b, r.Started, r.Elapsed, r.Machine, r.Command, r.Revision)
	b.WriteString("\n")

	b.WriteString("| what | measured | against | ratio | target | |\n|---|---:|---|---:|---|---|\n")
	row := func(what, measured, against, ratio, target, ok string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", what, measured, against, ratio, target, ok)
	}
	per := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "/s" }
	pct := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 0, 64) + " %" }

	ceiling, ceilingHow := r.Ceiling.Rate(), ""
	if r.Ceiling2.OK > 0 {
		ceiling = (r.Ceiling.Rate() + r.Ceiling2.Rate()) / 2
		ceilingHow = fmt.Sprintf("; mean of %s before and %s after the bursts", per(r.Ceiling.Rate()), per(r.Ceiling2.Rate()))
	}
	// Like for like: the ceiling's jobs go to a queue no worker reads, so
	// the burst it is compared with holds the e-mail workers back too
	// (their e-mails go out after it). With the e-mails sent during the
	// burst, on the same cores, the ratio also counts their cost, which the
	// ceiling does not have: that is the second row.
	tr := ratio(r.HTTPPaused.Rate(), ceiling)
	row(fmt.Sprintf("transitions/s through the HTTP API (%d clients, passer_en_instruction; its e-mail job committed, the e-mail workers held back during the burst as in the ceiling)", r.Clients),
		per(r.HTTPPaused.Rate()),
		fmt.Sprintf("SQL ceiling %s (raw pgx, %d goroutines: lock, update, history, delivery, River job + notify, to a queue no worker reads%s)", per(ceiling), r.Clients, ceilingHow),
		pct(tr), "≥ 50 %", mark(tr >= 0.5))
	row("… the same with the e-mails sent during the burst, on the same two cores (reference: the ceiling sends none)", per(r.HTTP.Rate()),
		"SQL ceiling", pct(ratio(r.HTTP.Rate(), ceiling)), "", "")
	row("… SQL ceiling with a pg_notify in every transaction (reference)", per(r.CeilingNotifyAll.Rate()), "", "", "", "")
	row("… their e-mails end to end (transitions → mailpit)", per(r.HTTPMailRate), "", "", "", "")

	slowest, slowName, slowCPU := r.RenderRate, "PDF renders", r.RenderCPU
	if r.IngestRate < slowest {
		slowest, slowName, slowCPU = r.IngestRate, "mailpit ingest", r.IngestCPU
	}
	ar := ratio(r.AcceptRate, slowest)
	row(fmt.Sprintf("acceptances/s end to end (%d × accepter → PDF → e-mail → stored by mailpit)", r.AcceptN),
		per(r.AcceptRate),
		fmt.Sprintf("slowest stage alone: %s %s", slowName, per(slowest)),
		pct(ar), "≥ 100/s and ≥ 70 %", mark(r.AcceptRate >= 100 && ar >= 0.7))
	// Alone, a stage has both cores; end to end, every stage and the
	// database share them, so the ratio is at most the slowest stage's share
	// of the CPU an acceptance costs.
	if stage, all := slowCPU.perOp(), r.AcceptCPU.perOp(); stage > 0 && all > 0 {
		row("… the most that ratio can be with the stages on the same cores: CPU per op of the slowest stage alone / CPU per acceptance",
			fmt.Sprintf("%.1f / %.1f ms", float64(stage)/1e6, float64(all)/1e6), "", pct(ratio(float64(stage), float64(all))), "", "")
	}
	row("… the accepter requests alone (HTTP 200s)", per(r.AcceptHTTP.Rate()), "", "", "", "")
	row(fmt.Sprintf("… stage: PDF renders/s in-process (%d goroutines)", r.RenderWorkers), per(r.RenderRate), "", "", "", "")
	row(fmt.Sprintf("… stage: mailpit ingest/s, same message + PDF, project's SMTP mailer (%d senders)", r.IngestWorkers), per(r.IngestRate), "", "", "", "")

	lat := func(what, unit string, l latencyResult, target string, ok func(p99 time.Duration) bool) {
		if len(l.Samples) == 0 {
			row(what, "not measured", "", "", target, "✗")
			return
		}
		p50, p99 := percentile(l.Samples, 50), percentile(l.Samples, 99)
		okMark := ""
		if ok != nil {
			okMark = mark(ok(p99))
		}
		row(fmt.Sprintf("%s (%d %s)", what, len(l.Samples), unit), ms(p50)+" / "+ms(p99)+" ms", "", "", target, okMark)
	}
	lat(fmt.Sprintf("e-mail latency p50 / p99 at %.0f transitions/s (HTTP 200 → mailpit Created)", r.Light.Rate), "e-mails", r.Light,
		"p99 < 500 ms", func(p99 time.Duration) bool { return p99 < 500*time.Millisecond })
	heavy := "80 % of the e-mail maximum"
	if r.HeavyRateSet {
		heavy = "-heavy-rate"
	}
	lat(fmt.Sprintf("e-mail latency p50 / p99 at %.0f transitions/s (%s)", r.Heavy.Rate, heavy), "e-mails", r.Heavy, "", nil)
	if len(r.WebhookHTTP) > 0 {
		with, without := sumRate(r.WebhookHTTP), sumRate(r.PlainHTTP)
		wr := ratio(with, without)
		row(fmt.Sprintf("transitions/s with one webhook subscriber (%d clients, passer_en_instruction with its e-mail and dossier.state_changed to a receiver in the bench; %d rounds of %s alternating with the next column's)",
			r.Clients, len(r.WebhookHTTP), r.WebhookHTTP[0].Elapsed.Round(time.Second)),
			per(with), fmt.Sprintf("the same on a procedure without subscriber, same run: %s", per(without)),
			pct(wr), "≥ 80 %", mark(wr >= 0.8))
		row("… their webhooks delivered end to end (first transition → last webhook received, signature verified)", per(mean(r.WebhookRates)), "", "", "",
			mark(r.WebhookUnverified == 0))
		lat(fmt.Sprintf("webhook latency p50 / p99 at %.0f transitions/s (HTTP 200 → receiver)", r.WebhookLight.Rate), "webhooks", r.WebhookLight, "", nil)
		lat(fmt.Sprintf("webhook latency p50 / p99 at %.0f transitions/s (80 %% of the webhook rate)", r.WebhookHeavy.Rate), "webhooks", r.WebhookHeavy, "", nil)
	}
	row("peak RSS of aptflow serve (VmHWM)", fmt.Sprintf("%.0f MiB", float64(r.RSS)/(1<<20)), "", "", "< 200 MB", mark(r.RSS > 0 && r.RSS < 200e6))

	if len(r.CPU) > 0 {
		b.WriteString("\nWhere the CPU went (from /proc; PostgreSQL: the backends of the bench's database and the WAL writer):\n\n")
		for _, c := range r.CPU {
			fmt.Fprintf(&b, "- %s: %s\n", c.Name, c.Use)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nProblems during the run:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// runHeader writes the lines a report starts with: when the run was, on
// what, and how it was started.
func runHeader(b *strings.Builder, started time.Time, elapsed time.Duration, m harness.Machine, command, revision string) {
	fmt.Fprintf(b, "Measured %s in %s.\n\n", started.UTC().Format("2006-01-02 15:04 MST"), elapsed.Round(time.Second))
	fmt.Fprintf(b, "- Machine: %s, %d cores (GOMAXPROCS %d), %.1f GiB RAM, %s\n", m.CPU, m.Cores, m.GOMAXPROCS, float64(m.Memory)/(1<<30), m.Kernel)
	fmt.Fprintf(b, "- Software: %s, PostgreSQL %s, mailpit %s, all on this machine, over loopback\n", m.Go, m.Postgres, m.Mailpit)
	fmt.Fprintf(b, "- Load average (1 min) at start / end: %s / %s (the run's own load included at the end; above ~0.5 at start, other work shares the cores)\n", m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(b, "- Command: `%s`, aptflow built from %s\n", command, revision)
}
