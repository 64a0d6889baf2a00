package harness_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/harness"
)

// TestAPI calls a real aptflow (in process) the way bench and chaos do.
func TestAPI(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	api := harness.NewAPI(s.Server.URL, s.Token, 2, 10*time.Second)
	ctx := t.Context()
	if err := harness.WaitReady(ctx, nil, s.Server.URL, 10*time.Second); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	var created struct {
		ID      int64  `json:"id"`
		Libelle string `json:"libelle"`
	}
	err := api.Call(ctx, http.StatusCreated, http.MethodPost, "/v1/procedures", map[string]any{
		"libelle": "APT", "service": map[string]any{"nom": "Préfecture du Rhône", "adresse": "Lyon"},
		"stale_after_days": 30, "heures_hebdo_max": 20,
	}, &created)
	if err != nil || created.ID == 0 || created.Libelle != "APT" {
		t.Fatalf("Call POST /v1/procedures = %v, %+v", err, created)
	}
	var raw []byte
	if err := api.Call(ctx, http.StatusOK, http.MethodGet, "/healthz", nil, &raw); err != nil || !strings.Contains(string(raw), `"ok"`) {
		t.Fatalf("Call GET /healthz = %v, %q", err, raw)
	}
	// Another status than the one wanted is an error that says both.
	err = api.Call(ctx, http.StatusOK, http.MethodGet, "/v1/dossiers/999999", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "404, want 200") {
		t.Fatalf("Call GET an unknown dossier = %v", err)
	}
	status, ct, _, err := api.Do(ctx, http.MethodGet, "/v1/dossiers/999999", nil)
	if err != nil || status != http.StatusNotFound || ct != "application/problem+json" {
		t.Fatalf("Do = %d %q %v", status, ct, err)
	}
	// Without its token, the same client is refused: Do sends it.
	if err := harness.NewAPI(s.Server.URL, "", 1, 10*time.Second).Call(ctx, http.StatusOK, http.MethodGet, "/v1/dossiers/1", nil, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without a token: %v", err)
	}
}

// TestCreateDatabase creates, recreates and drops a database on the test
// server, with both forms of connection string.
func TestCreateDatabase(t *testing.T) {
	t.Parallel()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = dbtest.DefaultAdminURL
	}
	ctx := t.Context()
	name := "aptflow_harness_" + strconv.Itoa(os.Getpid()) + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { _ = harness.DropDatabase(context.Background(), admin, name) })
	url, err := harness.CreateDatabase(ctx, admin, name)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background()) // cut by the second CreateDatabase
	var db string
	err = conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db)
	if err == nil {
		_, err = conn.Exec(ctx, `CREATE TABLE left_over (id int)`)
	}
	if err != nil || db != name {
		t.Fatalf("connected to %q: %v", db, err)
	}
	// Again: afresh, though a connection is still open on the old one.
	if _, err := harness.CreateDatabase(ctx, admin, name); err != nil {
		t.Fatal(err)
	}
	conn2, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	var tables int
	if err := conn2.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'left_over'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("recreated database has %d old tables (%v)", tables, err)
	}
	if err := harness.DropDatabase(ctx, admin, name); err != nil {
		t.Fatalf("DropDatabase with a connection open: %v", err)
	}
	adminConn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close(ctx)
	var left int
	if err := adminConn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&left); err != nil || left != 0 {
		t.Fatalf("the dropped database is still there (%d, %v)", left, err)
	}
	if got := harness.WithDatabase("host=127.0.0.1 dbname=postgres", name); !strings.HasSuffix(got, " dbname="+name) {
		t.Errorf("WithDatabase(key=value) = %q", got)
	}
	if got := harness.WithDatabase("postgres://u@h:5432/postgres?sslmode=disable", name); got != "postgres://u@h:5432/"+name+"?sslmode=disable" {
		t.Errorf("WithDatabase(URL) = %q", got)
	}
}

// TestAptflowCommand: aptflow gets the caller's configuration and only the
// harmless part of this process's environment.
func TestAptflowCommand(t *testing.T) {
	t.Setenv("SMTP_URL", "smtp://developer.example:25") // a developer's shell
	t.Setenv("GOGC", "50")
	a := harness.Aptflow{Bin: "bin/aptflow", Env: []string{"DATABASE_URL=postgres://db", "LOG_LEVEL=warn"}}
	cmd := a.Command(t.Context(), []string{"HTTP_ADDR=127.0.0.1:1"}, "serve")
	if !slices.Equal(cmd.Args, []string{"bin/aptflow", "serve"}) {
		t.Errorf("args %q", cmd.Args)
	}
	for _, want := range []string{"GOGC=50", "DATABASE_URL=postgres://db", "LOG_LEVEL=warn", "HTTP_ADDR=127.0.0.1:1"} {
		if !slices.Contains(cmd.Env, want) {
			t.Errorf("env lacks %s: %q", want, cmd.Env)
		}
	}
	for _, kv := range cmd.Env {
		if strings.HasPrefix(kv, "SMTP_URL=") {
			t.Errorf("the shell's %s reached aptflow", kv)
		}
	}
}

// TestWriteSection rewrites the generated section of a page and leaves the
// rest alone.
func TestWriteSection(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "PAGE.md")
	if err := harness.WriteSection(path, "bench", "x\n"); err == nil {
		t.Fatal("a missing page was written")
	}
	if err := os.WriteFile(path, []byte("# Page\n\nWritten by people.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	begin := "<!-- bench:begin (generated by make bench; edits here are overwritten) -->"
	for _, text := range []string{"| first |\n", "| second |\n"} {
		if err := harness.WriteSection(path, "bench", text); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Page\n\nWritten by people.\n\n## Latest run\n\n" + begin + "\n| second |\n<!-- bench:end -->\n"
	if string(got) != want {
		t.Fatalf("page:\n%s\nwant:\n%s", got, want)
	}
	// Another tool's section is not this one.
	if err := harness.WriteSection(path, "chaos", "| chaos |\n"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !strings.Contains(string(got), "| second |") || !strings.Contains(string(got), "| chaos |") {
		t.Fatalf("page after chaos:\n%s", got)
	}
}
