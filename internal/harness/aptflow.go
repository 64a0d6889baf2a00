package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// passedEnv are the variables of this program's environment that the
// aptflow processes it starts inherit. Everything aptflow reads for its
// configuration is the caller's (Aptflow.Env), so that a developer's shell
// cannot change what is measured or tested.
var passedEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"}

// Aptflow runs the aptflow binary with a configuration of the caller's.
type Aptflow struct {
	Bin string   // the binary, bin/aptflow after make build
	Env []string // KEY=value for every command: DATABASE_URL, LOG_LEVEL, …
}

// Command is `aptflow args...` with a.Env, then extra (KEY=value), as its
// configuration.
func (a Aptflow) Command(ctx context.Context, extra []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, a.Bin, args...)
	var env []string
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, a.Env...)
	cmd.Env = append(env, extra...)
	return cmd
}

// Prepare migrates the database and creates an API token named name, which
// it returns.
func (a Aptflow) Prepare(ctx context.Context, name string) (token string, err error) {
	if out, err := a.Command(ctx, nil, "migrate").CombinedOutput(); err != nil {
		return "", fmt.Errorf("aptflow migrate: %w\n%s", err, out)
	}
	out, err := a.Command(ctx, nil, "token", "create", name).Output()
	if err != nil {
		return "", fmt.Errorf("aptflow token create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Start starts `aptflow args...` with extra, its output in logPath, and
// returns once readyURL/readyz answers 200, within a minute; a process that
// does not get there is killed. The process does not end with ctx: stop it
// with Process.Stop, which lets a signal reach it as a deployment would.
func (a Aptflow) Start(ctx context.Context, name, logPath, readyURL string, extra []string, args ...string) (*Process, error) {
	p, err := StartLogged(name, a.Command(context.WithoutCancel(ctx), extra, args...), logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := WaitReady(ctx, p, readyURL, time.Minute); err != nil {
		p.Stop(syscall.SIGKILL, 0)
		return nil, fmt.Errorf("%s not ready (see %s): %w", name, logPath, err)
	}
	return p, nil
}

// WaitReady polls base/readyz until it answers 200; see WaitFor.
func WaitReady(ctx context.Context, p *Process, base string, timeout time.Duration) error {
	return WaitFor(ctx, p, timeout, func(ctx context.Context) error {
		return Ready(ctx, base)
	})
}

// Ready says whether base/readyz answers 200, within 3 seconds.
func Ready(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %s", resp.Status)
	}
	return nil
}

// WaitFor polls check until it succeeds, p exits (when p is not nil), ctx
// ends or timeout passes (then it returns check's last error).
func WaitFor(ctx context.Context, p *Process, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		if p != nil && p.Exited() {
			return errors.New("the process exited")
		}
		err := check(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		if err := Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}
