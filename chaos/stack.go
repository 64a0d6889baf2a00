package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/internal/mailpittest"
	"github.com/aptflow/aptflow/internal/webhooktest"
)

// chaosDB is the database of the run, in a cluster of its own.
const chaosDB = "aptflow_chaos"

// mailFrom is the sender of every e-mail: its domain is the Message-IDs'.
const mailFrom = "APT chaos <ne-pas-repondre@aptflow.chaos.localhost>"

// stack is the system under test.
type stack struct {
	o     options
	logf  func(format string, args ...any)
	tmp   string // the cluster's directory and mailpit's database, removed at the end
	pgDir string

	adminURL, dbURL string
	pool            *pgxpool.Pool // chaos's own connections, for the checks

	mpProc *harness.Process
	mp     *mailpittest.Server
	relay  *relay
	// hooks is the webhook receiver, and hooksEnv what lets aptflow reach
	// it and seal its secret.
	hooks    *webhooktest.Receiver
	hooksEnv []string

	serve   *harness.Process
	work    *harness.Process
	workN   int    // incarnations of the work process so far
	apiURL  string // serve's API
	workOps string // work's METRICS_ADDR, as a base URL
	token   string
	logs    []string // every aptflow log file of the run
}

// startStack starts the cluster, the database, mailpit, the relay and
// aptflow. On error, what was started is stopped by close.
func startStack(ctx context.Context, o options, logf func(string, ...any)) (s *stack, err error) {
	s = &stack{o: o, logf: logf}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return s, err
	}
	old, _ := filepath.Glob(filepath.Join(o.dir, "*.log"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	if s.tmp, err = os.MkdirTemp("", "aptflow-chaos-"); err != nil {
		return s, err
	}
	// The server runs as the postgres user, which must reach its directory.
	if err := os.Chmod(s.tmp, 0o755); err != nil {
		return s, err
	}
	s.pgDir = filepath.Join(s.tmp, "pg")
	if err := s.startCluster(ctx); err != nil {
		return s, err
	}
	logf("PostgreSQL cluster on 127.0.0.1:%d in %s", o.pgPort, s.pgDir)
	if s.dbURL, err = harness.CreateDatabase(ctx, s.adminURL, chaosDB); err != nil {
		return s, err
	}
	if s.token, err = s.aptflow().Prepare(ctx, "chaos"); err != nil {
		return s, err
	}
	pc, err := pgxpool.ParseConfig(s.dbURL)
	if err != nil {
		return s, err
	}
	pc.MaxConns = 4
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return s, err
	}
	if s.mpProc, s.mp, err = mailpittest.Launch(o.mailpit, s.tmp, filepath.Join(o.dir, "mailpit.out"), "--enable-chaos"); err != nil {
		return s, err
	}
	logf("mailpit on %s (SMTP %s)", s.mp.APIURL, s.mp.SMTPAddr)
	if s.relay, err = startRelay(s.mp.SMTPAddr); err != nil {
		return s, err
	}
	logf("SMTP relay on %s → mailpit", s.relay.addr)
	if s.hooksEnv, err = s.startReceiver(); err != nil {
		return s, err
	}
	logf("webhook receiver on %s", s.hooks.URL)
	if err := s.startServe(ctx); err != nil {
		return s, err
	}
	if err := s.startWork(ctx); err != nil {
		return s, err
	}
	logf("aptflow serve (pid %d) on %s, aptflow work (pid %d), logs in %s",
		s.serve.Cmd.Process.Pid, s.apiURL, s.work.Cmd.Process.Pid, o.dir)
	return s, nil
}

// script runs scripts/local-postgres.sh with the cluster's port and
// directory; its output goes to the run's log directory.
func (s *stack) script(ctx context.Context, verb string) error {
	cmd := exec.CommandContext(ctx, "scripts/local-postgres.sh", verb)
	cmd.Env = append(os.Environ(), "APTFLOW_PG_PORT="+strconv.Itoa(s.o.pgPort), "APTFLOW_PG_DIR="+s.pgDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/local-postgres.sh %s: %w\n%s", verb, err, out.String())
	}
	if verb == "start" {
		s.adminURL = strings.TrimSpace(lastLine(out.String()))
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (s *stack) startCluster(ctx context.Context) error {
	// Someone else's server on the port would answer our connections.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.o.pgPort))
	if err != nil {
		return fmt.Errorf("port %d is taken (another PostgreSQL? scripts/local-postgres.sh status); choose another with -pg-port: %w", s.o.pgPort, err)
	}
	l.Close()
	if err := s.script(ctx, "start"); err != nil {
		return err
	}
	if !strings.HasPrefix(s.adminURL, "postgres://") {
		return fmt.Errorf("scripts/local-postgres.sh start printed %q, not a URL", s.adminURL)
	}
	return nil
}

// restartCluster stops the cluster with a fast shutdown (clients cut,
// transactions in progress rolled back, a clean checkpoint), leaves it down
// for down, and starts it again; it returns when the server accepts
// connections. It is `pg_ctl restart -m fast` with a pause in the middle.
func (s *stack) restartCluster(ctx context.Context, down time.Duration) (stopped, started time.Time, err error) {
	if err := s.script(ctx, "stop"); err != nil {
		return time.Time{}, time.Time{}, err
	}
	stopped = time.Now()
	if err := harness.Sleep(ctx, down); err != nil {
		return stopped, time.Time{}, err
	}
	err = s.script(ctx, "start")
	return stopped, time.Now(), err
}

// aptflow is the aptflow binary with the run's configuration.
func (s *stack) aptflow() harness.Aptflow {
	return harness.Aptflow{Bin: s.o.aptflow, Env: []string{"DATABASE_URL=" + s.dbURL, "LOG_FORMAT=json", "LOG_LEVEL=info"}}
}

// workerEnv is the configuration of serve and work: short timeouts, so
// that a killed process's jobs come back within the run, and a capped
// e-mail backoff, so that a short SMTP outage costs seconds.
func (s *stack) workerEnv() []string {
	return append([]string{
		"SMTP_URL=smtp://" + s.relay.addr + "?tls=none",
		"MAIL_FROM=" + mailFrom,
		"JOB_TIMEOUT=10s",
		"RESCUE_AFTER=20s",
		"EMAIL_RETRY_MAX=5s",
		"EMAIL_MAX_ATTEMPTS=50",
		"SHUTDOWN_TIMEOUT=5s",
		"OPS_BASIC_AUTH=", // metrics and readiness for loopback clients
	}, s.hooksEnv...)
}

// startAptflow starts `aptflow args...` with the workers' configuration
// plus extra, its logs in the run's directory under name, and waits until
// readyURL/readyz answers 200.
func (s *stack) startAptflow(ctx context.Context, name, readyURL string, extra []string, args ...string) (*harness.Process, error) {
	path := filepath.Join(s.o.dir, name+".log")
	s.logs = append(s.logs, path)
	return s.aptflow().Start(ctx, name, path, readyURL, append(s.workerEnv(), extra...), args...)
}

func (s *stack) startServe(ctx context.Context) error {
	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	s.apiURL = "http://" + addr
	s.serve, err = s.startAptflow(ctx, "serve", s.apiURL, []string{"HTTP_ADDR=" + addr, "PUBLIC_URL=" + s.apiURL}, "serve")
	return err
}

// startWork starts a new incarnation of the work process, on the same
// METRICS_ADDR as the previous ones.
func (s *stack) startWork(ctx context.Context) error {
	if s.workOps == "" {
		addr, err := harness.FreeAddr()
		if err != nil {
			return err
		}
		s.workOps = "http://" + addr
	}
	s.workN++
	var err error
	s.work, err = s.startAptflow(ctx, "work-"+strconv.Itoa(s.workN), s.workOps,
		[]string{"METRICS_ADDR=" + strings.TrimPrefix(s.workOps, "http://"), "PUBLIC_URL=" + s.apiURL}, "work")
	return err
}

// killWork kills the work process with SIGKILL and waits for its end.
func (s *stack) killWork() {
	_ = s.work.Cmd.Process.Signal(syscall.SIGKILL)
	<-s.work.Done()
}

// stopAptflow stops serve and work gracefully.
func (s *stack) stopAptflow() {
	if s.work != nil {
		s.work.Stop(syscall.SIGTERM, 20*time.Second)
	}
	if s.serve != nil {
		s.serve.Stop(syscall.SIGTERM, 20*time.Second)
	}
}

// close stops everything chaos started and removes the cluster: nothing is
// left running, whatever happened.
func (s *stack) close() {
	s.stopAptflow()
	if s.relay != nil {
		s.relay.close()
	}
	if s.hooks != nil {
		s.hooks.Close()
	}
	s.mpProc.Stop(syscall.SIGKILL, 0)
	if s.pool != nil {
		s.pool.Close()
	}
	if s.pgDir != "" {
		// Not the run's context: it may be the one that ran out.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.script(ctx, "stop"); err != nil {
			s.logf("stopping the cluster: %v", err)
		}
		cancel()
	}
	if s.tmp != "" {
		if err := os.RemoveAll(s.tmp); err != nil {
			s.logf("removing %s: %v", s.tmp, err)
		}
	}
}
