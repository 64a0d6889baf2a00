package mailpittest

import (
	"bufio"
	"bytes"
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
	"sync"
	"testing"
	"time"
)

// Version is the mailpit release the project pins, installed with
// `go install github.com/axllent/mailpit@` + Version.
const Version = "v1.33.1"

// Server is a running mailpit, owned by one test.
type Server struct {
	// SMTPAddr is the SMTP server's address, 127.0.0.1:PORT.
	SMTPAddr string
	// APIURL is the base URL of the web UI and its API, http://127.0.0.1:PORT,
	// without a trailing slash.
	APIURL string

	client *http.Client
}

// Connect returns a client for a mailpit that something else started (the
// bench command, which runs it for minutes, outside any test): its SMTP
// server at smtpAddr and its API at apiURL (http://127.0.0.1:PORT).
func Connect(smtpAddr, apiURL string) *Server {
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
	// A free port found here may be taken by another process before mailpit
	// binds it; mailpit then exits, and a second try picks other ports.
	for attempt := 1; ; attempt++ {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("mailpittest: start %s: %v", bin, err)
		}
	}
}

func start(t testing.TB, bin string) (*Server, error) {
	smtpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	database := filepath.Join(t.TempDir(), "mailpit.db")
	cmd := exec.Command(bin,
		"--database", database,
		"--smtp", smtpAddr,
		"--listen", httpAddr,
		"--max", "0", // keep every message: tests count them
		"--smtp-auth-accept-any",
		"--smtp-auth-allow-insecure", // AUTH PLAIN without TLS, as aptflow may try it
		"--enable-chaos",
		"--smtp-disable-rdns",     // no DNS lookup per connection
		"--disable-version-check", // no network
		"--quiet",                 // errors only: they are logged if the test fails
	)
	out := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	s := &Server{
		SMTPAddr: smtpAddr,
		APIURL:   "http://" + httpAddr,
		client:   &http.Client{Timeout: 10 * time.Second},
	}
	if err := s.waitReady(exited, database); err != nil {
		stop()
		return nil, fmt.Errorf("%w\nmailpit output:\n%s", err, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() && out.Len() > 0 {
			t.Logf("mailpit output:\n%s", out.String())
		}
	})
	return s, nil
}

// WaitReady is waitReady for a mailpit that something else started, with
// its database at database, whose process closes exited when it ends.
func (s *Server) WaitReady(exited <-chan struct{}, database string) error {
	return s.waitReady(exited, database)
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

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// lockedBuffer collects mailpit's output, written by exec's copying
// goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
