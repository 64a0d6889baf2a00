// Package harness is what a program that drives a real aptflow from the
// outside needs, so that the fault suite (chaos/) and the bench (bench/)
// start and judge the same stack the same way:
//
//   - child processes that die with it (Start, StartLogged) and free
//     loopback ports (FreeAddr); mailpittest starts its mailpits with them;
//   - a fresh database (CreateDatabase), the aptflow binary with a
//     configuration of the caller's only (Aptflow: Prepare migrates and
//     makes a token, Start waits for /readyz), and its HTTP API (API);
//   - the command's main (Main), the machine its figures come from
//     (MachineInfo), and the generated section of its page in docs/
//     (WriteSection).
package harness

import (
	"context"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a child process to stop.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd, which the kernel kills if this program dies first.
func Start(name string, cmd *exec.Cmd) (*Process, error) {
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// StartLogged is Start with the process's output, stdout and stderr, in a
// file at logPath, created or emptied.
func StartLogged(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = f, f
	return Start(name, cmd)
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited says whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends sig, then kills the process if it has not exited after grace.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	if p == nil || p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Sleep waits for d, or less if ctx ends first (its error then).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
