package jobs

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/aptflow/aptflow/workflow"
)

func TestCronSlots(t *testing.T) {
	t.Parallel()
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	daily, err := parser.Parse("CRON_TZ=Europe/Paris 0 6 * * *")
	if err != nil {
		t.Fatal(err)
	}
	paris := workflow.Paris()
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}

	t.Run("PreviousRun", func(t *testing.T) {
		for now, want := range map[string]string{
			"2026-11-26 07:00:00": "2026-11-26 06:00:00",
			"2026-11-26 06:00:00": "2026-11-26 06:00:00",
			"2026-11-26 05:59:59": "2026-11-25 06:00:00",
			"2026-03-29 12:00:00": "2026-03-29 06:00:00", // the day of the change to summer time
		} {
			if got := previousRun(daily, at(now)); !got.Equal(at(want)) {
				t.Errorf("previous run at %s = %s, want %s", now, got, want)
			}
		}
		yearly, err := parser.Parse("0 0 1 1 *")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := previousRun(yearly, time.Date(2026, 11, 26, 0, 0, 0, 0, time.Local)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.Local); !got.Equal(want) {
			t.Errorf("yearly: %s, want %s", got, want)
		}
	})

	// River asks the constructor for a due run's args, then the schedule for
	// the next run; on start, it asks for the next run first.
	t.Run("Slot", func(t *testing.T) {
		s := &slotSchedule{schedule: daily}
		start := at("2026-11-26 10:00:00")
		first := s.Next(start) // the leader starts: next run tomorrow
		if got := s.slot(start); !got.Equal(at("2026-11-26 06:00:00")) {
			t.Errorf("run on start stands for %s, want today's 06:00", got)
		}
		// The run fires (River fires up to 100ms early).
		if got := s.slot(first.Add(-50 * time.Millisecond)); !got.Equal(first) {
			t.Errorf("scheduled run stands for %s, want %s", got, first)
		}
		s.Next(first)
		if got := s.slot(first.Add(time.Minute)); !got.Equal(first) {
			t.Errorf("after the run, slot = %s, want %s", got, first)
		}
		if got := s.slot(start); got.Location() != time.UTC || got.Nanosecond()%1000 != 0 {
			t.Errorf("slot %s is not canonical (UTC, microseconds)", got)
		}
	})
}
