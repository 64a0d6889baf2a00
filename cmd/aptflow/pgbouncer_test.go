package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/internal/harness"
	"github.com/aptflow/aptflow/internal/mailpittest"
)

// pgbouncerBinary finds Debian's pgbouncer, in /usr/sbin, which a user's
// PATH may lack.
func pgbouncerBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer"
	}
	t.Fatal("pgbouncer is not installed: apt-get install pgbouncer (.ci/run installs it)")
	return ""
}

// pgBouncer is a real PgBouncer in front of one test database.
type pgBouncer struct {
	URL   string // the database through PgBouncer
	admin string // its admin console
}

// startPgBouncer starts PgBouncer in transaction pooling mode in front of
// the database of dbURL, with serverConns server connections for all its
// clients: few enough that a client's transactions land on different
// server connections, as in production, where any session state (a LISTEN,
// a named prepared statement, a session lock) is lost or, worse, left for
// another client.
func startPgBouncer(t *testing.T, dbURL string, serverConns int) *pgBouncer {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	_, listenPort, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	ini := fmt.Sprintf(`[databases]
aptflow = host=%s port=%s dbname=%s user=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %s
unix_socket_dir =
auth_type = any
admin_users = pgbouncer
pool_mode = transaction
default_pool_size = %d
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits
`, host, port, strings.TrimPrefix(u.Path, "/"), u.User.Username(), listenPort, serverConns)
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root: it switches to this user.
		who := "postgres"
		if _, err := user.Lookup(who); err != nil {
			who = "nobody"
		}
		ini += "user = " + who + "\n"
	}
	path := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &apptest.SyncBuffer{}
	cmd := exec.Command(pgbouncerBinary(t), path)
	cmd.Stdout, cmd.Stderr = logs, logs
	p, err := harness.Start("pgbouncer", cmd)
	if err != nil {
		t.Fatalf("pgbouncer: %v", err)
	}
	t.Cleanup(func() {
		p.Stop(syscall.SIGINT, 10*time.Second) // SIGINT: close the server connections and exit
		if t.Failed() {
			t.Logf("pgbouncer:\n%s", logs)
		}
	})
	b := &pgBouncer{
		URL:   "postgres://" + u.User.Username() + "@" + addr + "/aptflow?sslmode=disable",
		admin: "postgres://pgbouncer@" + addr + "/pgbouncer?sslmode=disable&default_query_exec_mode=simple_protocol",
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := b.show(t, "VERSION"); err == nil {
			return b
		} else if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("pgbouncer does not answer: %v\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// show runs SHOW what on the admin console and returns its rows, each a
// map of column to value.
func (b *pgBouncer) show(t *testing.T, what string) ([]map[string]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SHOW "+what)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		// The console speaks the simple protocol: every value is text.
		vals := rows.RawValues()
		row := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = string(vals[i])
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// TestPgBouncerTransactionMode runs aptflow through a real PgBouncer in
// transaction pooling mode, with DATABASE_POOLER=transaction: migrate on an
// empty database, token create, serve (River polling), a dossier through
// instruction and acceptance, its attestation and the acceptance e-mail
// with the PDF; then a stale scan (its lock) and a second migrate (its
// lock). Three server connections serve every client, so that transactions
// of one client run on different server connections.
func TestPgBouncerTransactionMode(t *testing.T) {
	t.Parallel()
	mp := mailpittest.Start(t)
	dbURL := dbtest.EmptyURL(t)
	bouncer := startPgBouncer(t, dbURL, 3)
	e := baseEnv(t, bouncer.URL, mp.SMTPURL()).with("DATABASE_POOLER", "transaction")
	base := e["PUBLIC_URL"]

	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, e.getenv, &out, &errb); err != nil {
			t.Fatalf("aptflow %s through PgBouncer: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	if out := cli("migrate"); !strings.Contains(out, "migrated:") || strings.Contains(out, " 0 aptflow") {
		t.Fatalf("migrate: %q", out)
	}
	startRun(t, e, base, "serve")
	w := newWorld(t, base, createToken(t, e))

	id, usager := w.dossier()
	w.instruct(id)
	w.must("POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "accepter", "instructeur": w.inst}, nil)
	msgs := mp.WaitFor(t, "to:"+usager, 2, 60*time.Second)
	attached := 0
	for _, m := range msgs {
		attached += m.Attachments
	}
	if attached != 1 {
		t.Errorf("the applicant got %d attachments, want the attestation", attached)
	}
	var d demoDossier
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.must("GET", fmt.Sprintf("/v1/dossiers/%d", id), nil, &d)
		sent := 0
		for _, m := range d.Emails {
			if m.Status == "sent" {
				sent++
			}
		}
		if d.Attestation != nil && sent == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dossier %d: attestation %v, e-mails %+v", id, d.Attestation, d.Emails)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if out := cli("scan-stale", "--now", time.Now().Format(time.RFC3339)); !strings.Contains(out, "flagged") {
		t.Errorf("scan-stale: %q", out)
	}
	if out := cli("migrate"); !strings.Contains(out, "0 aptflow and 0 River migrations applied") {
		t.Errorf("a second migrate: %q", out)
	}

	// All of it went through PgBouncer, in transaction mode.
	config, err := bouncer.show(t, "CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range config {
		if row["key"] == "pool_mode" && row["value"] != "transaction" {
			t.Errorf("pool_mode %s", row["value"])
		}
	}
	stats, err := bouncer.show(t, "STATS")
	seen := false
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range stats {
		if row["database"] == "aptflow" {
			if n, _ := strconv.Atoi(row["total_xact_count"]); n < 10 {
				t.Errorf("%d transactions went through PgBouncer: %v", n, row)
			}
			seen = true
		}
	}
	if !seen {
		t.Errorf("PgBouncer has no statistics of the database aptflow: %v", stats)
	}
}
