// Package zonetest runs tests again in a process whose local time zone is
// another one, to show that they do not depend on the machine's zone.
//
// The local zone (time.Local) is read once per process, from TZ: a test
// cannot change it for itself without racing with the tests around it. So
// [Run] starts the test binary again, with TZ set, running only the named
// tests, and fails if they fail.
package zonetest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Extremes are zones at the two ends of the clock, where a date kept as an
// instant lands on another day: UTC+14 (Kiribati's Line Islands), UTC-11
// (American Samoa) and UTC-12 (Etc/GMT+12: POSIX signs are reversed).
var Extremes = []string{"Pacific/Kiritimati", "Pacific/Pago_Pago", "Etc/GMT+12"}

// envZone tells the child process which zone it was started in.
const envZone = "APTFLOW_ZONETEST"

// Run runs the tests named in tests (top-level names) in one child process
// per zone, with TZ set to it, and fails t if one of them fails or does not
// run. Call it from a top-level test: in the child, Run checks that the
// zone took (an unknown TZ silently means UTC, which would prove nothing)
// and returns.
func Run(t *testing.T, tests []string, zones ...string) {
	t.Helper()
	if zone := os.Getenv(envZone); zone != "" {
		checkLocal(t, zone)
		return
	}
	top, _, _ := strings.Cut(t.Name(), "/")
	pattern := "^(" + top + "|" + strings.Join(tests, "|") + ")$"
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+pattern, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "TZ="+zone, envZone+"="+zone)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("in TZ=%s: %v\n%s", zone, err, out)
			}
			for _, name := range append([]string{top}, tests...) {
				if !strings.Contains(string(out), "--- PASS: "+name+" ") {
					t.Fatalf("in TZ=%s, %s did not run:\n%s", zone, name, out)
				}
			}
		})
	}
}

// checkLocal fails t unless the local zone has zone's offsets.
func checkLocal(t *testing.T, zone string) {
	t.Helper()
	want, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatalf("zone %s: %v", zone, err)
	}
	for _, at := range []time.Time{
		time.Date(2026, time.January, 15, 12, 0, 0, 0, time.UTC),
		time.Date(2026, time.July, 15, 12, 0, 0, 0, time.UTC),
	} {
		_, got := at.In(time.Local).Zone()
		_, off := at.In(want).Zone()
		if got != off {
			t.Fatalf("TZ=%s did not take: local offset %ds, want %ds", zone, got, off)
		}
	}
}
