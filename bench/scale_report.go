package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// scaleReport is everything one bench-scale run measured.
type scaleReport struct {
	Command  string
	Revision string
	Machine  harness.Machine
	Started  time.Time
	Elapsed  time.Duration
	Stages   []*scaleStage
	Plans    []scalePlan
	Mail     *mailResult
	RSS      int64
	Notes    []string
}

// The targets of issue 19 on this machine.
const (
	readP50Target = 10 * time.Millisecond
	readP99Target = 50 * time.Millisecond
	decisionMail  = 5 * time.Second
)

// msf prints a duration in milliseconds, with a decimal under 10 ms.
func msf(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// table renders the report in Markdown.
func (r *scaleReport) table() string {
	var b strings.Builder
	runHeader(&b, r.Started, r.Elapsed, r.Machine, r.Command, r.Revision)
	fmt.Fprintf(&b, "- Procedures: « petite » (created through the API, its dossiers too), « grande » (half of the seeded dossiers) and %d others sharing the other half; one request at a time, p50 / p99 in ms\n\n", mediumProcedures)

	if len(r.Stages) > 0 {
		b.WriteString("| route | procedure |")
		for _, st := range r.Stages {
			fmt.Fprintf(&b, " %s dossiers |", thousands(st.Size))
		}
		b.WriteString(" target at the largest | |\n|---|---|")
		for range r.Stages {
			b.WriteString("---:|")
		}
		b.WriteString("---|---|\n")
		first, last := r.Stages[0], r.Stages[len(r.Stages)-1]
		for _, route := range last.Routes {
			for _, proc := range []string{"petite", "grande"} {
				fmt.Fprintf(&b, "| `%s` | %s |", route, proc)
				for _, st := range r.Stages {
					s := st.Samples[sampleKey(route, proc)]
					if len(s) == 0 {
						b.WriteString(" – |")
						continue
					}
					p50, p99 := percentiles(s)
					fmt.Fprintf(&b, " %s / %s |", msf(p50), msf(p99))
				}
				target, ok := "", ""
				s := last.Samples[sampleKey(route, proc)]
				p50, p99 := percentiles(s)
				switch {
				case len(s) == 0:
				case isRead(route):
					target, ok = "p50 ≤ 10, p99 ≤ 50", mark(p50 <= readP50Target && p99 <= readP99Target)
				case strings.HasPrefix(route, routeEvts):
					if e := first.Samples[sampleKey(route, proc)]; len(e) > 0 && first != last {
						_, e99 := percentiles(e)
						target, ok = fmt.Sprintf("p99 ≤ 2 × %s (empty)", msf(e99)), mark(p99 <= 2*e99)
					}
				}
				fmt.Fprintf(&b, " %s | %s |\n", target, ok)
			}
		}
		b.WriteString("\nSeeding, by SQL (not measured through the API):\n\n")
		for _, st := range r.Stages {
			if st.Seeded == 0 {
				continue
			}
			fmt.Fprintf(&b, "- to %s dossiers: %s in %s (%s)\n", thousands(st.Size), thousands(st.Seeded), st.SeedTime.Round(time.Second), strings.Join(st.SeedSteps, ", "))
		}
	}

	if mr := r.Mail; mr != nil {
		fmt.Fprintf(&b, "\nDecision e-mails while a stale scan's reminders are queued (`aptflow scan-stale` over %s stale dossiers: %s reminders and %s bulk e-mails in all, queued in %s; SMTP_MAX_RATE unset, so the bulk goes as fast as it can beside them):\n\n",
			thousands(mr.Reminders), thousands(mr.Reminders), thousands(mr.Bulk), mr.ScanTime.Round(time.Second))
		b.WriteString("| acceptances, one every 0.5 s | p50 | max | target | |\n|---|---:|---:|---|---|\n")
		for _, proc := range []string{"petite", "grande"} {
			d := mr.Delays[proc]
			if len(d) == 0 {
				continue
			}
			mx := percentile(d, 100)
			fmt.Fprintf(&b, "| %s: HTTP 200 → mailpit's Created, PDF attached (%d) | %s ms | %s ms | ≤ 5 s | %s |\n",
				proc, len(d), ms(percentile(d, 50)), ms(mx), mark(mx <= decisionMail))
		}
		fmt.Fprintf(&b, "\nWhen the last of them went out, %s of the %s bulk e-mails had been sent.\n", thousands(mr.BulkSentBefore), thousands(mr.Bulk))
	}
	if r.RSS > 0 {
		fmt.Fprintf(&b, "\nPeak RSS of aptflow serve (VmHWM): %.0f MiB.\n", float64(r.RSS)/(1<<20))
	}
	if len(r.Plans) > 0 {
		fmt.Fprintf(&b, "\nThe plans of the tabs' queries at %s dossiers (EXPLAIN ANALYZE, BUFFERS, of the query workflow.Service ran, first page):\n", thousands(r.Stages[len(r.Stages)-1].Size))
		for _, p := range r.Plans {
			fmt.Fprintf(&b, "\n%s, %s:\n\n```\n%s\n```\n", p.Procedure, p.Tab, strings.TrimRight(p.Text, "\n"))
		}
	}
	notes := r.Notes
	for _, st := range r.Stages {
		for _, n := range st.Notes {
			notes = append(notes, fmt.Sprintf("at %s dossiers: %s", thousands(st.Size), n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nProblems during the run:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// thousands prints n with a comma between thousands.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(",")
		}
		b.WriteRune(c)
	}
	return b.String()
}
