package harness

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what a run ran on.
type Machine struct {
	CPU        string
	Cores      int
	GOMAXPROCS int
	Memory     int64 // bytes
	Kernel     string
	Go         string
	// Postgres and Mailpit are the versions of the servers of the run: the
	// caller fills them in.
	Postgres, Mailpit string
	// LoadBefore and LoadAfter are the 1-minute load averages when the run
	// started and ended: other work on the machine skews every figure.
	LoadBefore, LoadAfter string
}

// MachineInfo describes this machine, from /proc where there is one.
func MachineInfo() Machine {
	m := Machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), Kernel: runtime.GOOS}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(v); len(f) == 2 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.Memory = kb << 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.LoadBefore = LoadAverage()
	return m
}

// LoadAverage is the 1-minute load average, or "?".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
