package jobs

import (
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// NewCronJob returns a River periodic job that inserts args(slot) on
// schedule (a robfig/cron schedule satisfies river.PeriodicSchedule), where
// slot is the run time the job stands for: the cron time it fired for, not
// the moment it was inserted or worked.
//
// River's leader keeps the next run time in memory only: a leader that
// dies just before a run time, or a new leader elected just after it, would
// skip that run. So the job also runs on start, for the last run time that
// has passed. Args carrying their slot, with unique-by-args insert options,
// make that harmless: the new leader's insert for a slot already enqueued
// (and still retained by River) is dropped, and a worker that sees a slot
// it has already done does nothing.
//
// Each successful run is recorded in cron_runs under id, which the metrics
// read (QueueCollector.WithCrons): a cron's run that did not happen shows.
func NewCronJob(id string, schedule river.PeriodicSchedule, args func(slot time.Time) river.JobArgs) *river.PeriodicJob {
	s := &slotSchedule{schedule: schedule}
	return river.NewPeriodicJob(s, func() (river.JobArgs, *river.InsertOpts) {
		slot := s.slot(time.Now())
		// The metadata names the cron and its slot, for cron_runs.
		return args(slot), cronInsertOpts(id, slot)
	}, &river.PeriodicJobOpts{ID: id, RunOnStart: true})
}

// slotMargin is how early River may fire a run (it fires what is due within
// 100ms), with room to spare.
const slotMargin = time.Second

// slotSchedule wraps a schedule to tell the constructor which run time it
// is firing for: River asks the constructor for a due run's args, then asks
// the schedule for the run after it, so the last time Next returned is the
// run being fired.
type slotSchedule struct {
	schedule river.PeriodicSchedule

	mu   sync.Mutex
	next time.Time // the last time Next returned
}

// Next returns the schedule's next run time after t and remembers it.
func (s *slotSchedule) Next(t time.Time) time.Time {
	n := s.schedule.Next(t)
	s.mu.Lock()
	s.next = n
	s.mu.Unlock()
	return n
}

// slot is the run time a constructor called at now fires for: the
// remembered next run if it is due, else (the run on start, when the next run
// is still ahead) the last run time that has passed.
func (s *slotSchedule) slot(now time.Time) time.Time {
	s.mu.Lock()
	next := s.next
	s.mu.Unlock()
	if !next.IsZero() && !next.After(now.Add(slotMargin)) {
		return canonicalTime(next)
	}
	if prev := previousRun(s.schedule, now); !prev.IsZero() {
		return canonicalTime(prev)
	}
	return canonicalTime(now)
}

// previousRun is the last run time of schedule at or before now, or zero
// if there is none within a year. Cron schedules only go forward, so it
// starts from further and further back until a run time falls before now,
// then steps forward: a few calls for any usual schedule.
func previousRun(schedule river.PeriodicSchedule, now time.Time) time.Time {
	for _, back := range []time.Duration{time.Minute, time.Hour, 25 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		t := schedule.Next(now.Add(-back))
		if t.IsZero() || t.After(now) {
			continue
		}
		for {
			n := schedule.Next(t)
			if n.IsZero() || !n.After(t) || n.After(now) {
				return t
			}
			t = n
		}
	}
	return time.Time{}
}

// canonicalTime is t as PostgreSQL stores it (UTC, microseconds), so that
// the same instant always encodes to the same JSON, whichever time zone the
// schedule computed it in: unique-by-args compares the encoded args.
func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
