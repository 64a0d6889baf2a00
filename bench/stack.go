package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/internal/mailpittest"
	"github.com/aptflow/aptflow/internal/webhooktest"
)

// benchDB is the database the bench creates, and drops, on each run;
// bench-scale's is scaleDB.
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
	api    *harness.API

	procedureID int64
	// hookedID is the procedure whose transitions go to the webhook
	// receiver hooks.
	hookedID    int64
	hooks       *webhooktest.Receiver
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
	if s.dbURL, err = harness.CreateDatabase(ctx, o.adminURL, o.database); err != nil {
		return s, err
	}
	logf("database %s created", o.database)
	token, err := s.aptflow().Prepare(ctx, "bench")
	if err != nil {
		return s, err
	}

	pc, err := pgxpool.ParseConfig(s.dbURL)
	if err != nil {
		return s, err
	}
	pc.MaxConns = int32(o.clients) + 4
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return s, err
	}
	if s.mpProc, s.mp, err = mailpittest.Launch(o.mailpit, s.tmp, filepath.Join(s.dir, "mailpit.log")); err != nil {
		return s, err
	}
	logf("mailpit on %s (SMTP %s)", s.mp.APIURL, s.mp.SMTPAddr)
	hooksEnv, err := s.webhookEnv()
	if err != nil {
		return s, err
	}
	if err := s.startAptflow(ctx, token, hooksEnv); err != nil {
		return s, err
	}
	logf("aptflow serve (pid %d) on %s, logs in %s", s.app.Cmd.Process.Pid, s.apiURL, filepath.Join(s.dir, "aptflow.log"))
	return s, nil
}

// aptflow is the aptflow binary with the bench's configuration: its
// database, and few logs, which cost time.
func (s *stack) aptflow() harness.Aptflow {
	return harness.Aptflow{Bin: s.o.aptflow, Env: []string{"DATABASE_URL=" + s.dbURL, "LOG_FORMAT=json", "LOG_LEVEL=warn"}}
}

// startAptflow starts `aptflow serve` on a free port, with the API client
// the bench calls it with.
func (s *stack) startAptflow(ctx context.Context, token string, extraEnv []string) error {
	addr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	s.apiURL = "http://" + addr
	s.app, err = s.aptflow().Start(ctx, "aptflow serve", filepath.Join(s.dir, "aptflow.log"), s.apiURL, append([]string{
		"HTTP_ADDR=" + addr,
		"PUBLIC_URL=" + s.apiURL,
		"SMTP_URL=smtp://" + s.mp.SMTPAddr,
		"OPS_BASIC_AUTH=", // ops endpoints (pprof) answer loopback clients
	}, append(extraEnv, s.o.env...)...), "serve")
	if err != nil {
		return err
	}
	// A profile request lasts as long as the profile it takes.
	s.api = harness.NewAPI(s.apiURL, token, 256, time.Minute)
	return nil
}

// close stops aptflow (gracefully), mailpit, and drops the database.
func (s *stack) close() {
	s.app.Stop(syscall.SIGTERM, 40*time.Second)
	s.mpProc.Stop(syscall.SIGKILL, 0)
	if s.hooks != nil {
		s.hooks.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
	if s.dbURL != "" && !s.o.keep {
		// Not the run's context: it may be the one that ran out.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := harness.DropDatabase(ctx, s.o.adminURL, s.o.database); err != nil {
			s.logf("drop %s: %v", s.o.database, err)
		}
		cancel()
	}
}

// setup creates, through the API, the procedure, its instructeur and one
// dossier whose demandeur the seeded dossiers copy.
func (s *stack) setup(ctx context.Context) error {
	var created struct {
		ID int64 `json:"id"`
	}
	if err := s.api.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures", map[string]any{
		"libelle":          "Autorisation provisoire de travail (APT) pour les étudiants",
		"service":          map[string]any{"nom": "Préfecture du Rhône", "adresse": "106 rue Pierre Corneille\n69003 Lyon"},
		"stale_after_days": 30,
		"heures_hebdo_max": 20,
	}, &created); err != nil {
		return err
	}
	s.procedureID = created.ID
	s.instructeur = "instructeur@prefecture.bench.localhost"
	if err := s.api.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures/"+strconv.FormatInt(s.procedureID, 10)+"/instructeurs",
		map[string]any{"email": s.instructeur, "nom": "Camille Instructrice"}, nil); err != nil {
		return err
	}
	if err := s.api.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/dossiers", map[string]any{
		"procedure_id": s.procedureID,
		"usager_email": "modele@bench.localhost",
		"demandeur":    demandeur(),
	}, &created); err != nil {
		return err
	}
	return s.pool.QueryRow(ctx, `SELECT demandeur FROM dossiers WHERE id = $1`, created.ID).Scan(&s.demandeur)
}

// seed inserts n dossiers in state, with applicants uNUMBER@TAG.bench.localhost
// (distinct, so that an e-mail is matched to its dossier by recipient),
// and returns their ids and recipients. Seeding is plain SQL: it is not
// measured, and through the API it would take longer than the phases.
func (s *stack) seed(ctx context.Context, n int, tag, state string) ([]dossier, error) {
	return s.seedIn(ctx, s.procedureID, n, tag, state)
}

// seedIn is seed on procedure proc.
func (s *stack) seedIn(ctx context.Context, proc int64, n int, tag, state string) ([]dossier, error) {
	rows, err := s.pool.Query(ctx, `
		INSERT INTO dossiers (procedure_id, usager_email, demandeur, state)
		SELECT $1, 'u' || g || '@' || $2 || '.bench.localhost', $3, $4
		FROM generate_series(1, $5) g
		RETURNING id, usager_email`, proc, tag, s.demandeur, state, n)
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
	return s.api.Call(ctx, http.StatusOK, http.MethodPut, "/riverui/api/queues/"+queue+"/"+action, map[string]any{}, nil)
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

// demandeur is the APT request of the dossiers the bench creates through
// the API, which those it seeds copy.
func demandeur() map[string]any {
	return map[string]any{
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
	}
}

// startMeasured starts the stack and describes what the run measures on:
// the machine, PostgreSQL's and mailpit's versions.
func startMeasured(ctx context.Context, o options, logf func(string, ...any)) (*stack, harness.Machine, error) {
	m := harness.MachineInfo()
	m.Mailpit = mailpittest.Version
	s, err := startStack(ctx, o, logf)
	if err != nil {
		return nil, m, err
	}
	if err := s.pool.QueryRow(ctx, `SHOW server_version`).Scan(&m.Postgres); err != nil {
		s.close()
		return nil, m, err
	}
	return s, m, nil
}
