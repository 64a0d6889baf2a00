package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestDatabaseUnavailable: an error that says the database is out of reach
// answers 503 with Retry-After, so that clients try again; any other
// unexpected error is a 500 that says nothing of its cause.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for name, tc := range map[string]struct {
		err    error
		status int
	}{
		"ConnectionRefused": {fmt.Errorf("transition dossier 1: %w", refused), 503},
		"AdminShutdown":     {fmt.Errorf("lock dossier 1: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}), 503},
		"CannotConnectNow":  {&pgconn.PgError{Severity: "FATAL", Code: "57P03"}, 503},
		"ConnectionFailure": {&pgconn.PgError{Code: "08006"}, 503},
		"CutMidQuery":       {fmt.Errorf("read: %w", io.ErrUnexpectedEOF), 503},
		"UniqueViolation":   {&pgconn.PgError{Code: "23505"}, 500},
		"Other":             {errors.New("render: boom"), 500},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			writeError(w, httptest.NewRequest("POST", "/v1/dossiers/1/events", nil), slog.New(slog.DiscardHandler), tc.err)
			if w.Code != tc.status || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s, want %d", w.Code, w.Header().Get("Content-Type"), tc.status)
			}
			if retry := w.Header().Get("Retry-After"); (tc.status == http.StatusServiceUnavailable) != (retry == "1") {
				t.Errorf("Retry-After %q", retry)
			}
		})
	}
}
