package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// benchDB is the database the bench creates, and drops, on each run.
const benchDB = "aptflow_bench"

// stack is the running system under measurement: a database, a mailpit and
// an `aptflow serve` process, plus what the bench set up through the API.
type stack struct {
	o      options
	logf   func(format string, args ...any)
	dir    string // var/bench: logs and profiles, kept after the run
	tmp    string // mailpit's database, removed after the run
	dbURL  string
	pool   *pgxpool.Pool // the bench's own connections: seeding, ceiling, queue checks
	mp     *mailpittest.Server
	mpProc *harness.Process
	app    *harness.Process
	apiURL string
	token  string
	client *http.Client

	procedureID int64
	instructeur string
	demandeur   []byte // a valid demandeur, copied into the seeded dossiers
}

// startStack creates the database, migrates it, and starts mailpit and
// aptflow. On error, what was started is stopped.
func startStack(ctx context.Context, o options, logf func(string, ...any)) (s *stack, err error) {
	s = &stack{o: o, logf: logf, dir: filepath.Join("var", "bench")}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return s, err
	}
	if s.tmp, err = os.MkdirTemp("", "aptflow-bench-"); err != nil {
		return s, err
	}
	if s.dbURL, err = createDatabase(ctx, o.adminURL); err != nil {
		return s, err
	}
	logf("database %s created", benchDB)
	if out, err := s.aptflowCmd(ctx, nil, "migrate").CombinedOutput(); err != nil {
		return s, fmt.Errorf("aptflow migrate: %w\n%s", err, out)
	}
	out, err := s.aptflowCmd(ctx, nil, "token", "create", "bench").Output()
	if err != nil {
		return s, fmt.Errorf("aptflow token create: %w", err)
	}
	s.token = strings.TrimSpace(string(out))

	pc, err := pgxpool.ParseConfig(s.dbURL)
	if err != nil {
		return s, err
	}
	pc.MaxConns = int32(o.clients) + 4
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return s, err
	}
	if err := s.startMailpit(ctx); err != nil {
		return s, err
	}
	logf("mailpit on %s (SMTP %s)", s.mp.APIURL, s.mp.SMTPAddr)
	if err := s.startAptflow(ctx); err != nil {
		return s, err
	}
	logf("aptflow serve (pid %d) on %s, logs in %s", s.app.Cmd.Process.Pid, s.apiURL, filepath.Join(s.dir, "aptflow.log"))
	return s, nil
}

// createDatabase drops and creates benchDB and returns its URL.
func createDatabase(ctx context.Context, adminURL string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+benchDB+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop %s: %w", benchDB, err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+benchDB+` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		return "", fmt.Errorf("create %s: %w", benchDB, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + benchDB
	return u.String(), nil
}

func dropDatabase(adminURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+benchDB+` WITH (FORCE)`)
	return err
}

// passedEnv are the variables of the bench's environment that aptflow
// inherits; everything aptflow reads for its configuration is set by the
// bench, so that a developer's shell cannot change what is measured.
var passedEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"}

// aptflowCmd is the aptflow binary with the bench's configuration plus
// extra ("KEY=value").
func (s *stack) aptflowCmd(ctx context.Context, extra []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.o.aptflow, args...)
	var env []string
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "DATABASE_URL="+s.dbURL, "LOG_FORMAT=json", "LOG_LEVEL=warn")
	cmd.Env = append(env, extra...)
	return cmd
}

func (s *stack) startMailpit(ctx context.Context) error {
	p, mp, err := harness.StartMailpit(s.o.mailpit, s.tmp, filepath.Join(s.dir, "mailpit.log"))
	if err != nil {
		return err
	}
	s.mpProc, s.mp = p, mp
	return nil
}

func (s *stack) startAptflow(ctx context.Context) error {
	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	s.apiURL = "http://" + addr
	// Its own context: the process is stopped with SIGTERM by close, not
	// killed by a cancelled ctx.
	cmd := s.aptflowCmd(context.WithoutCancel(ctx), []string{
		"HTTP_ADDR=" + addr,
		"PUBLIC_URL=" + s.apiURL,
		"SMTP_URL=smtp://" + s.mp.SMTPAddr,
		"OPS_BASIC_AUTH=", // ops endpoints (pprof) answer loopback clients
	}, "serve")
	logFile, err := os.Create(filepath.Join(s.dir, "aptflow.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	s.app, err = harness.Start("aptflow serve", cmd)
	logFile.Close()
	if err != nil {
		return fmt.Errorf("start aptflow: %w", err)
	}
	s.client = &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     time.Minute,
		},
	}
	err = waitFor(ctx, s.app, 30*time.Second, func(ctx context.Context) error {
		_, err := s.call(ctx, http.MethodGet, "/readyz", nil, http.StatusOK)
		return err
	})
	if err != nil {
		return fmt.Errorf("aptflow serve not ready (see %s): %w", filepath.Join(s.dir, "aptflow.log"), err)
	}
	return nil
}

// waitFor polls check until it succeeds, p exits or timeout passes.
func waitFor(ctx context.Context, p *harness.Process, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return errors.New("the process exited")
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// close stops aptflow (gracefully), mailpit, and drops the database.
func (s *stack) close() {
	s.app.Stop(syscall.SIGTERM, 40*time.Second)
	s.mpProc.Stop(syscall.SIGKILL, 0)
	if s.pool != nil {
		s.pool.Close()
	}
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
	if s.dbURL != "" && !s.o.keep {
		if err := dropDatabase(s.o.adminURL); err != nil {
			s.logf("drop %s: %v", benchDB, err)
		}
	}
}

// call does one API request and returns the body of a response with status
// want.
func (s *stack) call(ctx context.Context, method, path string, body any, want int) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.apiURL+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d, want %d: %.300s", method, path, resp.StatusCode, want, b)
	}
	return b, nil
}

// setup creates, through the API, the procedure, its instructeur and one
// dossier whose demandeur the seeded dossiers copy.
func (s *stack) setup(ctx context.Context) error {
	var created struct {
		ID int64 `json:"id"`
	}
	b, err := s.call(ctx, http.MethodPost, "/v1/procedures", map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture du Rhône", "adresse": "106 rue Pierre Corneille\n69003 Lyon"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
	}, http.StatusCreated)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &created); err != nil {
		return err
	}
	s.procedureID = created.ID
	s.instructeur = "instructeur@prefecture.bench.localhost"
	if _, err := s.call(ctx, http.MethodPost, "/v1/procedures/"+strconv.FormatInt(s.procedureID, 10)+"/instructeurs",
		map[string]any{"email": s.instructeur, "nom": "Camille Instructrice"}, http.StatusCreated); err != nil {
		return err
	}
	b, err = s.call(ctx, http.MethodPost, "/v1/dossiers", map[string]any{
		"procedure_id": s.procedureID,
		"usager_email": "modele@bench.localhost",
		"demandeur": map[string]any{
			"nom": "Dupré", "prenom": "Élodie",
			"date_naissance": "2003-04-12", "lieu_naissance": "Montréal (Canada)", "nationalite": "canadienne",
			"titre_sejour":  map[string]any{"numero": "6912345678", "expire_le": "2031-09-30"},
			"etablissement": "Université Lumière Lyon 2",
			"employeur": map[string]any{
				"raison_sociale": "Boulangerie Œuvre & Fils", "siret": "73282932000074",
				"adresse": "3 place Bellecour, 69002 Lyon",
			},
			"emploi": "vendeuse en boulangerie", "heures_hebdo": 17.5,
			"date_debut": "2030-12-01", "date_fin": "2031-06-30",
		},
	}, http.StatusCreated)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &created); err != nil {
		return err
	}
	return s.pool.QueryRow(ctx, `SELECT demandeur FROM dossiers WHERE id = $1`, created.ID).Scan(&s.demandeur)
}

// seed inserts n dossiers in state, with applicants uNUMBER@TAG.bench.localhost
// (distinct, so that an e-mail is matched to its dossier by recipient),
// and returns their ids and recipients. Seeding is plain SQL: it is not
// measured, and through the API it would take longer than the phases.
func (s *stack) seed(ctx context.Context, n int, tag, state string) ([]dossier, error) {
	rows, err := s.pool.Query(ctx, `
		INSERT INTO dossiers (procedure_id, usager_email, demandeur, state)
		SELECT $1, 'u' || g || '@' || $2 || '.bench.localhost', $3, $4
		FROM generate_series(1, $5) g
		RETURNING id, usager_email`, s.procedureID, tag, s.demandeur, state, n)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", tag, err)
	}
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dossier])
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", tag, err)
	}
	_, err = s.pool.Exec(ctx, `ANALYZE dossiers`)
	return ds, err
}

// dossier is a seeded dossier.
type dossier struct {
	ID     int64
	Usager string
}

// pending counts the e-mail and attestation jobs not finished yet.
func (s *stack) pending(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FROM river_job
		WHERE queue IN ('email', 'attestation') AND state IN ('available', 'running', 'retryable', 'scheduled', 'pending')`).Scan(&n)
	return n, err
}

// quiesce waits until no e-mail or attestation job is left, then empties
// mailpit, so that the next phase starts from an idle system and counts only
// its own messages.
func (s *stack) quiesce(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.pending(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d jobs still pending after %s", n, timeout)
		}
		if err := harness.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return s.mp.DeleteAll(ctx)
}

// pauseQueue pauses or resumes a River queue through River UI's API.
func (s *stack) pauseQueue(ctx context.Context, queue string, pause bool) error {
	action := "resume"
	if pause {
		action = "pause"
	}
	_, err := s.call(ctx, http.MethodPut, "/riverui/api/queues/"+queue+"/"+action, map[string]any{}, http.StatusOK)
	return err
}

// vmHWM returns the peak resident set size of aptflow, in bytes.
func (s *stack) vmHWM() (int64, error) {
	return procStatusBytes(s.app.Cmd.Process.Pid, "VmHWM")
}

// procStatusBytes reads a "Key: N kB" line of /proc/PID/status.
func procStatusBytes(pid int, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}
