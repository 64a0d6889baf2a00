package templates

import (
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/zonetest"
	"github.com/aptflow/aptflow/workflow"
)

func TestDateFR(t *testing.T) {
	t.Parallel()
	for d, want := range map[workflow.Date]string{
		{Year: 2001, Month: time.March, Day: 1}:     "1er mars 2001",
		{Year: 2026, Month: time.November, Day: 26}: "26 novembre 2026",
		{Year: 2025, Month: time.December, Day: 31}: "31 décembre 2025",
		{Year: 2026, Month: time.August, Day: 1}:    "1er août 2026",
		{Year: 2026, Month: time.March, Day: 29}:    "29 mars 2026",    // Paris springs forward
		{Year: 2026, Month: time.October, Day: 25}:  "25 octobre 2026", // Paris falls back
		{Year: 2024, Month: time.February, Day: 29}: "29 février 2024",
		{}: "",
		{Year: 2027, Month: time.February, Day: 29}: "2027-02-29", // not a date: shown as it is
		{Year: 2026, Month: time.Month(13), Day: 1}: "2026-13-01",
	} {
		if got := DateFR(d); got != want {
			t.Errorf("DateFR(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestDatesInZones renders the dates again on machines set to the zones at
// both ends of the clock: no date, no e-mail may move by a day.
func TestDatesInZones(t *testing.T) {
	zonetest.Run(t, []string{"TestDateFR", "TestFrenchDates", "TestEmailBody"}, zonetest.Extremes...)
}
