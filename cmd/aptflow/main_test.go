package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/openapitest"
)

// binDir holds the aptflow binary that tests of real processes share.
var binDir string

// apiCheck checks against api/openapi.yaml every response that the tests
// receive from an aptflow they started (watch), whatever client asked:
// it is http.DefaultTransport, which the demo's client, http.Get and the
// tests' clients use.
var apiCheck = &openapitest.Transport{Next: http.DefaultTransport}

// watch checks the responses of the listeners that e configures, for t.
func watch(t *testing.T, e procEnv) {
	t.Helper()
	for _, k := range []string{"HTTP_ADDR", "METRICS_ADDR"} {
		if addr := e[k]; addr != "" {
			apiCheck.Watch(t, "http://"+addr)
		}
	}
}

func TestMain(m *testing.M) {
	http.DefaultTransport = apiCheck
	dir, err := os.MkdirTemp("", "aptflow-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildOnce builds ./cmd/aptflow once per test process.
var buildOnce = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "aptflow")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// binary returns the path of the aptflow binary built from this tree.
func binary(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// freeAddr returns a loopback address whose port is free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// procEnv is an environment for run or a process.
type procEnv map[string]string

func (e procEnv) getenv(k string) string { return e[k] }

func (e procEnv) list() []string {
	l := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range e {
		l = append(l, k+"="+v)
	}
	return l
}

// with returns a copy of e with the pairs k, v... set.
func (e procEnv) with(kv ...string) procEnv {
	c := procEnv{}
	for k, v := range e {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

// testPoolConns caps each test server's pool: the tests of all packages
// run at once on a server with max_connections 100, and a server that
// refuses a connection after an e-mail went out makes its job send it again.
const testPoolConns = 6

// baseEnv is the configuration of a test server on database dbURL, with a
// fresh HTTP address; e-mails go to smtpURL.
func baseEnv(t *testing.T, dbURL, smtpURL string) procEnv {
	addr := freeAddr(t)
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	return procEnv{
		"DATABASE_URL": dbURL + sep + "pool_max_conns=" + strconv.Itoa(testPoolConns),
		"HTTP_ADDR":    addr,
		"PUBLIC_URL":   "http://" + addr,
		"SMTP_URL":     smtpURL,
		"MAIL_DIR":     t.TempDir(),
		"LOG_FORMAT":   "json",
	}
}

// logLines splits a process's logs into JSON records and other lines.
func logLines(logs *apptest.SyncBuffer) (records []map[string]any, notJSON []string) {
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			notJSON = append(notJSON, sc.Text())
			continue
		}
		records = append(records, m)
	}
	return records, notJSON
}

// inProcess is `aptflow CMD` run in the test process by run().
type inProcess struct {
	cancel context.CancelFunc
	logs   *apptest.SyncBuffer
	done   chan struct{}
	err    error
}

// startRun starts run(ctx, args...) and, if readyURL is set, waits until
// its /readyz answers 200. It is stopped at cleanup if the test did not.
func startRun(t *testing.T, e procEnv, readyURL string, args ...string) *inProcess {
	t.Helper()
	watch(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{cancel: cancel, logs: &apptest.SyncBuffer{}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = run(ctx, args, e.getenv, io.Discard, p.logs)
	}()
	t.Cleanup(func() {
		if _, err := p.stop(30 * time.Second); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if t.Failed() {
			t.Logf("logs of %v:\n%s", args, p.logs)
		}
	})
	if readyURL != "" {
		waitReady(t, readyURL, p.done)
	}
	return p
}

// stop cancels run's context, as a signal would, and returns how long run
// took to return, and what it returned.
func (p *inProcess) stop(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	p.cancel()
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(timeout):
		return time.Since(start), fmt.Errorf("run did not return within %s", timeout)
	}
}

// process is a real aptflow process.
type process struct {
	cmd  *exec.Cmd
	logs *apptest.SyncBuffer
	done chan struct{}
}

// startProcess starts the binary with args and e; it is stopped with
// SIGTERM at cleanup if the test did not stop it.
func startProcess(t *testing.T, e procEnv, args ...string) *process {
	t.Helper()
	watch(t, e)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = e.list()
	p := &process{cmd: cmd, logs: &apptest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	// The kernel kills it if the test process dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if _, err := p.terminate(30 * time.Second); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if t.Failed() {
			t.Logf("logs of %v:\n%s", args, p.logs)
		}
	})
	return p
}

// terminate sends SIGTERM and returns the exit code, or kills the process
// after timeout.
func (p *process) terminate(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1, fmt.Errorf("no exit within %s of SIGTERM: killed", timeout)
	}
}

// waitReady polls base/readyz until it answers 200; exited closing first
// fails the test.
func waitReady(t *testing.T, base string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("exited before %s/readyz answered", base)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz: not ready after 60s (last: %v)", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createToken makes an API token with `aptflow token create`.
func createToken(t *testing.T, e procEnv) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"token", "create", "test"}, e.getenv, &out, &errb); err != nil {
		t.Fatalf("token create: %v\n%s", err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// openDB opens a small pool on dbURL for the test's own checks.
func openDB(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// world is a procedure with an instructeur, reached through the API.
type world struct {
	t    *testing.T
	c    *demoClient
	inst string
	proc int64
	seq  int
	mu   sync.Mutex
}

// newWorld creates a procedure and an instructeur through the API at base.
func newWorld(t *testing.T, base, token string) *world {
	t.Helper()
	w := &world{t: t, c: &demoClient{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}},
		inst: "camille.martin@prefecture.test"}
	var p struct{ ID int64 }
	w.must("POST", "/v1/procedures", map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture du Rhône", "adresse": "18 rue de Bonnel\n69003 Lyon"},
		"stale_after_days": 30, "heures_hebdo_max": 20,
	}, &p)
	w.proc = p.ID
	w.must("POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", w.proc), map[string]any{"email": w.inst, "nom": "Camille Martin"}, nil)
	return w
}

func (w *world) must(method, path string, in, out any) {
	w.t.Helper()
	if err := w.c.do(context.Background(), method, path, in, out); err != nil {
		w.t.Fatal(err)
	}
}

// dossier creates a dossier of « Élodie Dupré » and returns its id and the
// applicant's unique e-mail.
func (w *world) dossier() (int64, string) {
	w.t.Helper()
	id, usager, err := w.tryDossier()
	if err != nil {
		w.t.Fatal(err)
	}
	return id, usager
}

// tryDossier is dossier for other goroutines than the test's.
func (w *world) tryDossier() (int64, string, error) {
	w.mu.Lock()
	w.seq++
	usager := "elodie.dupre+" + strconv.Itoa(w.seq) + "@etudiant.test"
	w.mu.Unlock()
	var d struct{ ID int64 }
	err := w.c.do(context.Background(), "POST", "/v1/dossiers", map[string]any{"procedure_id": w.proc, "usager_email": usager, "demandeur": map[string]any{
		"nom": "Dupré", "prenom": "Élodie", "date_naissance": "2003-04-12", "lieu_naissance": "Montréal (Canada)",
		"nationalite": "canadienne", "titre_sejour": map[string]any{"numero": "6912345678", "expire_le": "2030-09-30"},
		"etablissement": "Université Lumière Lyon 2",
		"employeur": map[string]any{"raison_sociale": "Boulangerie Œuvre & Fils", "siret": "73282932000074",
			"adresse": "3 place Bellecour, 69002 Lyon"},
		"emploi": "vendeuse en boulangerie", "heures_hebdo": 17.5, "date_debut": "2029-12-01", "date_fin": "2030-06-30",
	}}, &d)
	return d.ID, usager, err
}

// instruct passes a dossier en instruction: one e-mail to the applicant.
func (w *world) instruct(id int64) {
	w.t.Helper()
	if err := w.tryInstruct(id); err != nil {
		w.t.Fatal(err)
	}
}

// tryInstruct is instruct for other goroutines than the test's.
func (w *world) tryInstruct(id int64) error {
	return w.c.do(context.Background(), "POST", fmt.Sprintf("/v1/dossiers/%d/events", id),
		map[string]any{"event": "passer_en_instruction", "instructeur": w.inst}, nil)
}

// waitSQL polls query (one boolean) until it is true.
func waitSQL(t *testing.T, pool *pgxpool.Pool, timeout time.Duration, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := pool.QueryRow(context.Background(), query, args...).Scan(&ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still false after %s (err %v): %s %v", timeout, err, query, args)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stallingSMTP is an in-process SMTP server (emersion/go-smtp) whose DATA
// takes delay to answer, or never answers while delay is 0: the slow job a
// graceful stop must wait for, or cancel. mailpit cannot stall like that.
type stallingSMTP struct {
	Addr string
	// Data receives a value when a message's data has been read and the
	// server starts stalling.
	Data chan struct{}

	// Reject, when not 0, is the SMTP code that answers the data at once.
	Reject atomic.Int32

	delay   time.Duration
	release chan struct{}
	mu      sync.Mutex
	taken   int
}

func newStallingSMTP(t *testing.T, delay time.Duration) *stallingSMTP {
	t.Helper()
	s := &stallingSMTP{Data: make(chan struct{}, 100), delay: delay, release: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &stallSession{s}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		close(s.release)
		_ = srv.Close()
	})
	return s
}

// URL is the server as SMTP_URL.
func (s *stallingSMTP) URL() string { return "smtp://" + s.Addr }

// Taken is how many messages the server accepted.
func (s *stallingSMTP) Taken() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.taken
}

type stallSession struct{ s *stallingSMTP }

func (*stallSession) Reset()                               { /* one message per connection */ }
func (*stallSession) Logout() error                        { return nil }
func (*stallSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*stallSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *stallSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if code := ss.s.Reject.Load(); code != 0 {
		return &smtp.SMTPError{Code: int(code), Message: "rejected by the test"}
	}
	ss.s.Data <- struct{}{}
	var after <-chan time.Time
	if ss.s.delay > 0 {
		after = time.After(ss.s.delay)
	}
	select {
	case <-after:
		ss.s.mu.Lock()
		ss.s.taken++
		ss.s.mu.Unlock()
		return nil
	case <-ss.s.release:
		return &smtp.SMTPError{Code: 421, Message: "test over"}
	}
}

// scrape reads url with basic auth user:pass ("" for none) and returns the
// samples by their exposition key, `name{label="value",...}`, and the help
// text of each metric family.
func scrape(t *testing.T, url, userPass string) (samples map[string]float64, help map[string]string) {
	t.Helper()
	resp, body := httpGet(t, url, userPass)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	samples, help = map[string]float64{}, map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if h, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, text, _ := strings.Cut(h, " ")
			help[name] = text
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples, help
}

// httpGet gets url, with basic auth user:pass unless userPass is "", and
// returns the response and its body.
func httpGet(t *testing.T, url, userPass string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, p, ok := strings.Cut(userPass, ":"); ok {
		req.SetBasicAuth(u, p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}
