package main

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// row is the outcome of one fault.
type row struct {
	Fault, Load  string
	Tally        tally
	DupLimit     int // duplicates allowed: one per kill at most (DupWhy: "kills")
	DupWhy       string
	Recovery     time.Duration
	RecoveryWhat string
	Took         time.Duration
	Notes        []string
	Problems     []string // failed checks
}

func (r row) ok() bool {
	return len(r.Problems) == 0 && r.Tally.Lost == 0 && r.Tally.Expected > 0 && r.Tally.Duplicates <= r.DupLimit
}

// logScan is what the personal-data check of the logs found.
type logScan struct {
	Files, Lines int
	Needles      []string
	Hits         []string // file:line: needle
}

// report is one run.
type report struct {
	Command  string
	Machine  harness.Machine
	Started  time.Time
	Elapsed  time.Duration
	Rows     []row
	Logs     logScan
	Problems []string
}

func (r *report) ok() bool {
	if len(r.Problems) > 0 || len(r.Logs.Hits) > 0 || r.Logs.Lines == 0 || len(r.Rows) == 0 {
		return false
	}
	for _, row := range r.Rows {
		if !row.ok() {
			return false
		}
	}
	return true
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func seconds(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
}

// markdown renders the report: readable in a terminal, and pasted as is
// into docs/RELIABILITY.md.
func (r *report) markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Run %s, %s in all.\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %.1f GiB RAM, %s; load average (1 min) %s at start, %s at end\n",
		m.CPU, m.Cores, float64(m.Memory)/(1<<30), m.Kernel, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(&b, "- Software: %s, PostgreSQL %s (a throwaway cluster: scripts/local-postgres.sh, fsync off), mailpit %s; all on loopback\n",
		m.Go, m.Postgres, m.Mailpit)
	b.WriteString("- aptflow: one `serve` (API and workers) and one `work`, real binaries; JOB_TIMEOUT=10s, RESCUE_AFTER=20s, EMAIL_RETRY_MAX=5s, EMAIL_MAX_ATTEMPTS=50\n")
	fmt.Fprintf(&b, "- Command: `%s`\n\n", r.Command)

	b.WriteString("| fault | load | delivered | lost | duplicates | recovery time | |\n|---|---|---:|---:|---:|---:|---|\n")
	for _, row := range r.Rows {
		t := row.Tally
		dup := strconv.Itoa(t.Duplicates)
		if row.DupLimit > 0 {
			dup += fmt.Sprintf(" (≤ %d %s)", row.DupLimit, cmp.Or(row.DupWhy, "kills"))
		}
		delivered := fmt.Sprintf("%d/%d", t.Delivered, t.Expected)
		if t.Failed > 0 {
			delivered += fmt.Sprintf(" (+%d refused: failed)", t.Failed)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n",
			row.Fault, row.Load, delivered, t.Lost, dup, seconds(row.Recovery), mark(row.ok()))
	}
	b.WriteString("\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "- **%s** (%s):", row.Fault, row.Took.Round(time.Second))
		if row.RecoveryWhat != "" {
			fmt.Fprintf(&b, " recovery time = %s.", row.RecoveryWhat)
		}
		b.WriteString("\n")
		for _, n := range row.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
		for _, p := range row.Problems {
			fmt.Fprintf(&b, "  - ✗ %s\n", p)
		}
	}
	fmt.Fprintf(&b, "\nPersonal data in the logs: %d hits for %d names and addresses (%s) in %d lines of %d aptflow log files %s\n",
		len(r.Logs.Hits), len(r.Logs.Needles), strings.Join(quoted(r.Logs.Needles), ", "), r.Logs.Lines, r.Logs.Files, mark(len(r.Logs.Hits) == 0 && r.Logs.Lines > 0))
	for i, h := range r.Logs.Hits {
		if i == 10 {
			fmt.Fprintf(&b, "  - … and %d more\n", len(r.Logs.Hits)-i)
			break
		}
		fmt.Fprintf(&b, "  - ✗ %s\n", h)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "- ✗ %s\n", p)
	}
	fmt.Fprintf(&b, "\nVerdict: %s\n", map[bool]string{true: "nothing lost, every check passed ✓", false: "FAILED ✗"}[r.ok()])
	return b.String()
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "« " + s + " »"
	}
	return out
}

// scanLogs looks for every name and address chaos used in the aptflow log
// files: logs carry ids, never personal data, even when an SMTP server
// quotes an address in its refusal.
func scanLogs(paths []string) (logScan, error) {
	scan := logScan{Needles: personalData}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return scan, err
		}
		scan.Files++
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 4<<20)
		n := 0
		for sc.Scan() {
			n++
			scan.Lines++
			line := strings.ToLower(sc.Text())
			for _, needle := range personalData {
				if strings.Contains(line, strings.ToLower(needle)) {
					scan.Hits = append(scan.Hits, fmt.Sprintf("%s:%d: %s", filepath.Base(path), n, needle))
				}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return scan, err
		}
	}
	return scan, nil
}
