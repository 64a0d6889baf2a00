package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ), 100 on every
// Linux the bench runs on.
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time used so far by each part of the stack, and by
// the whole machine.
type cpuSample struct {
	at                                  time.Time
	aptflow, postgres, mailpit, benchCP time.Duration
	machineBusy                         time.Duration // all CPUs, every process
	backends                            map[int]time.Duration
	commits                             int64 // transactions of the bench's database
}

// cpuUse is the CPU time each part used during a phase.
type cpuUse struct {
	Wall                              time.Duration
	Aptflow, Postgres, Mailpit, Bench time.Duration
	Others                            time.Duration // the rest of the machine: other work skews the figures
	MachineBusy                       time.Duration
	Ops                               int // operations of the phase, to divide by
	PostgresPids                      int
	Commits                           int64
}

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// the last ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// machineBusy returns the CPU time all CPUs spent not idle.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 && i < 8 { // not idle, not iowait, not guest
			busy += n
		}
	}
	return time.Duration(busy) * clockTick
}

// postgresPids are the backends connected to the bench's database (the
// pools of aptflow and of the bench), plus the server's WAL writer: where
// the database work of a phase is done.
func (s *stack) postgresPids(ctx context.Context) []int {
	rows, err := s.pool.Query(ctx, `
		SELECT pid FROM pg_stat_activity
		WHERE datname = $1 OR backend_type IN ('walwriter', 'checkpointer', 'background writer')`, s.o.database)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuMeter measures the CPU use of a phase.
type cpuMeter struct {
	s     *stack
	ctx   context.Context
	start cpuSample
}

func (s *stack) startCPU(ctx context.Context) *cpuMeter {
	m := &cpuMeter{s: s, ctx: ctx}
	m.start = m.sample(nil)
	return m
}

// sample reads the CPU times now. PostgreSQL's is that of the backends
// there are now; a backend that was not there at the start (a pool grew)
// counts from its birth, which was during the phase.
func (m *cpuMeter) sample(start *cpuSample) cpuSample {
	c := cpuSample{at: time.Now(), machineBusy: machineBusy(), backends: map[int]time.Duration{}}
	c.aptflow = procCPU(m.s.app.Cmd.Process.Pid)
	c.mailpit = procCPU(m.s.mpProc.Cmd.Process.Pid)
	c.benchCP = procCPU(os.Getpid())
	// Statistics lag up to a second behind the backends; over a phase of
	// seconds that is noise.
	_ = m.s.pool.QueryRow(m.ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1`, m.s.o.database).Scan(&c.commits)
	for _, pid := range m.s.postgresPids(m.ctx) {
		t := procCPU(pid)
		c.backends[pid] = t
		if start != nil {
			c.postgres += t - start.backends[pid]
		}
	}
	return c
}

// stop returns the CPU used since startCPU, for ops operations.
func (m *cpuMeter) stop(ops int) cpuUse {
	end := m.sample(&m.start)
	u := cpuUse{
		Wall:         end.at.Sub(m.start.at),
		Aptflow:      end.aptflow - m.start.aptflow,
		Postgres:     end.postgres,
		Mailpit:      end.mailpit - m.start.mailpit,
		Bench:        end.benchCP - m.start.benchCP,
		MachineBusy:  end.machineBusy - m.start.machineBusy,
		Ops:          ops,
		PostgresPids: len(end.backends),
		Commits:      end.commits - m.start.commits,
	}
	u.Others = max(0, u.MachineBusy-u.Aptflow-u.Postgres-u.Mailpit-u.Bench)
	return u
}

// perOp is the CPU time of the whole stack (aptflow, PostgreSQL, mailpit
// and the bench) per operation, 0 if not measured.
func (u cpuUse) perOp() time.Duration {
	if u.Ops == 0 {
		return 0
	}
	return (u.Aptflow + u.Postgres + u.Mailpit + u.Bench) / time.Duration(u.Ops)
}

// String is the CPU per operation of each part, and how busy the machine
// was.
func (u cpuUse) String() string {
	if u.Ops == 0 || u.Wall <= 0 {
		return "not measured"
	}
	per := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond)/float64(u.Ops), 'f', 2, 64)
	}
	cores := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(u.Wall), 'f', 2, 64)
	}
	return fmt.Sprintf("CPU ms per op: aptflow %s, PostgreSQL %s, mailpit %s, bench %s; database transactions per op %.1f; cores busy: ours %s, others %s",
		per(u.Aptflow), per(u.Postgres), per(u.Mailpit), per(u.Bench),
		float64(u.Commits)/float64(u.Ops),
		cores(u.Aptflow+u.Postgres+u.Mailpit+u.Bench), cores(u.Others))
}
