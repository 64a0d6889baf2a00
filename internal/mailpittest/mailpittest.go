package mailpittest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/harness"
)

// Version is the mailpit release the project pins, installed with
// `go install github.com/axllent/mailpit@` + Version.
const Version = "v1.33.1"

// Server is a running mailpit, owned by one test (Start) or one program
// (Launch).
type Server struct {
	// SMTPAddr is the SMTP server's address, 127.0.0.1:PORT.
	SMTPAddr string
	// APIURL is the base URL of the web UI and its API, http://127.0.0.1:PORT,
	// without a trailing slash.
	APIURL string

	client *http.Client
}

// connect returns a client for the mailpit whose SMTP server is at smtpAddr
// and API at apiURL (http://127.0.0.1:PORT).
func connect(smtpAddr, apiURL string) *Server {
	return &Server{
		SMTPAddr: smtpAddr,
		APIURL:   strings.TrimRight(apiURL, "/"),
		client:   &http.Client{Timeout: 30 * time.Second},
	}
}

// SMTPURL returns the SMTP server as aptflow's SMTP_URL expects it:
// smtp://127.0.0.1:PORT.
func (s *Server) SMTPURL() string { return "smtp://" + s.SMTPAddr }

// Start starts a mailpit for the test on free loopback ports and returns once
// both its SMTP server and its API answer. The process is killed when the
// test ends; if the test failed, mailpit's error output is logged.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("mailpittest: %v", err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "mailpit.log")
	p, s, err := Launch(bin, dir, logPath, "--enable-chaos")
	if err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("mailpittest: %v\nmailpit output:\n%s", err, out)
	}
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL, 0)
		if out, _ := os.ReadFile(logPath); t.Failed() && len(out) > 0 {
			t.Logf("mailpit output:\n%s", out)
		}
	})
	return s
}

// Launch starts the mailpit binary bin on free loopback ports, with its
// database in dir and its output in logPath, keeping every message (--max
// 0) and accepting any SMTP login; extra adds flags (--enable-chaos). It is
// Start for a program that runs mailpit outside any test (bench, chaos):
// the process dies with its parent, and the caller stops it. It returns
// once this very mailpit answers: a port found free may be taken by another
// program before mailpit binds it, so it tries three times, and it checks
// the database path the API reports, so that a caller never empties another
// program's mailpit.
func Launch(bin, dir, logPath string, extra ...string) (*harness.Process, *Server, error) {
	var last error
	for range 3 {
		smtpAddr, err := harness.FreeAddr()
		if err != nil {
			return nil, nil, err
		}
		httpAddr, err := harness.FreeAddr()
		if err != nil {
			return nil, nil, err
		}
		database := filepath.Join(dir, "mailpit.db")
		_ = os.Remove(database) // a failed try's
		cmd := exec.Command(bin, append([]string{
			"--database", database,
			"--smtp", smtpAddr,
			"--listen", httpAddr,
			"--max", "0", // keep every message: the callers count them
			"--smtp-auth-accept-any",
			"--smtp-auth-allow-insecure", // AUTH PLAIN without TLS, as aptflow may try it
			"--smtp-disable-rdns",        // no DNS lookup per connection
			"--disable-version-check",    // no network
			"--quiet",                    // errors only
		}, extra...)...)
		p, err := harness.StartLogged("mailpit", cmd, logPath)
		if err != nil {
			return nil, nil, fmt.Errorf("start mailpit: %w", err)
		}
		s := connect(smtpAddr, "http://"+httpAddr)
		if last = s.waitReady(p.Done(), database); last == nil {
			return p, s, nil
		}
		p.Stop(syscall.SIGKILL, 0)
	}
	return nil, nil, fmt.Errorf("mailpit did not start (see %s): %w", logPath, last)
}

// waitReady polls until the API answers as this very mailpit (the database
// path it reports is ours, not another process's that got the port) and the
// SMTP server greets.
func (s *Server) waitReady(exited <-chan struct{}, database string) error {
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("mailpit exited during start")
		default:
		}
		if err = s.checkAPI(database); err == nil {
			if err = s.checkSMTP(); err == nil {
				select {
				case <-exited: // it lost the SMTP port to the one that greeted
					return errors.New("mailpit exited during start")
				default:
					return nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("mailpit not ready after 15s: %w", err)
}

func (s *Server) checkAPI(database string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var info struct{ Database string }
	if err := s.getJSON(ctx, "/api/v1/info", nil, &info); err != nil {
		return err
	}
	if info.Database != database {
		return fmt.Errorf("another mailpit answers on %s", s.APIURL)
	}
	return nil
}

func (s *Server) checkSMTP() error {
	conn, err := net.DialTimeout("tcp", s.SMTPAddr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(greeting, "220 ") {
		return fmt.Errorf("unexpected SMTP greeting %q", greeting)
	}
	_, _ = conn.Write([]byte("QUIT\r\n"))
	return nil
}

// binary finds mailpit: $MAILPIT, $PATH, then where go install puts it.
func binary() (string, error) {
	if p := os.Getenv("MAILPIT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MAILPIT=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(gopath, "bin"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, "mailpit")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mailpit not found ($MAILPIT, $PATH, %s).\n"+
		"\tRun the tests with `make test`, which installs it (scripts/ensure-mailpit.sh), or install it:\n"+
		"\tgo install github.com/axllent/mailpit@%s", strings.Join(dirs, ", "), Version)
}
