package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/workflow"
)

// maxIdempotencyKey bounds the Idempotency-Key header, in characters.
const maxIdempotencyKey = 255

// idempotent replays the first response to a POST for the same
// Idempotency-Key (per token); the same key with another request is 422.
//
// A keyed request runs in one transaction (workflow.WithTx) that claims
// the key, makes the request's changes and stores its response, and the
// response is sent only once that transaction has committed: a request
// that committed always has its response stored, so a client whose reply
// was lost gets it on retry and the request never runs twice, even if the
// process dies between the commit and the reply. A request that fails
// with a 5xx, or whose process dies, rolls back with its key: nothing
// happened, a retry runs it. A concurrent retry waits for the first to
// finish (the key's row is locked until then) and replays its response.
func idempotent(pool *pgxpool.Pool, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get("Idempotency-Key")
			if key == "" {
				next.ServeHTTP(w, r)
				return
			}
			// A key the database cannot store would fail the request with
			// a 500 after it ran: refuse it first.
			if !utf8.ValidString(key) {
				writeProblem(w, problem(codeInvalidIdempotencyKey, "Idempotency-Key n'est pas de l'UTF-8 valide", nil))
				return
			}
			if utf8.RuneCountInString(key) > maxIdempotencyKey {
				writeProblem(w, problem(codeIdempotencyKeyTooLong, fmt.Sprintf("Idempotency-Key trop longue (%d caractères au plus)", maxIdempotencyKey), nil))
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
			if err != nil {
				writeProblem(w, problem(codeBodyTooLarge, "le corps de la requête est trop grand", nil))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			h := sha256.New()
			fmt.Fprintf(h, "%s %s\n", r.Method, r.URL.Path)
			h.Write(body)
			hash := h.Sum(nil)
			tok := tokenID(r.Context())
			ctx := r.Context()

			tx, err := pool.Begin(ctx)
			if err != nil {
				writeError(w, r, log, fmt.Errorf("claim idempotency key: %w", err))
				return
			}
			// A no-op once committed; otherwise nothing of the request stays.
			defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
			// A concurrent request with the key waits here until the
			// first commits (then there is a row: replay) or rolls back.
			tag, err := tx.Exec(ctx, `
				INSERT INTO idempotency_keys (token_id, key, request_hash) VALUES ($1, $2, $3)
				ON CONFLICT (token_id, key) DO NOTHING`, tok, key, hash)
			if err != nil {
				writeError(w, r, log, fmt.Errorf("claim idempotency key: %w", err))
				return
			}
			if tag.RowsAffected() == 0 {
				_ = tx.Rollback(ctx)
				replay(w, r, pool, log, tok, key, hash)
				return
			}
			rec := newBufferedResponse()
			txCtx, committed := workflow.WithTx(ctx, tx)
			next.ServeHTTP(rec, r.WithContext(txCtx))
			if rec.status < 500 {
				_, err = tx.Exec(ctx, `
					UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5, dossier_id = $6
					WHERE token_id = $1 AND key = $2`, tok, key, rec.status, rec.header.Get("Content-Type"), withoutSecret(rec.body.Bytes()),
					responseDossier(r, rec))
				if err == nil {
					err = tx.Commit(ctx)
				}
				if err != nil {
					// Nothing of the request committed: the client may
					// retry with the same key.
					writeError(w, r, log, fmt.Errorf("store idempotent response: %w", err))
					return
				}
				committed()
			}
			rec.sendTo(w)
		})
	}
}

// responseDossier is the dossier a stored response is about, which the
// purge erases it with: the dossier of the route, or the one the request
// created (its Location); nil for a response about no dossier.
func responseDossier(r *http.Request, rec *bufferedResponse) *int64 {
	var s string
	switch {
	case strings.HasPrefix(r.Pattern, "POST /v1/dossiers/{id}/"):
		s = r.PathValue("id")
	case r.Pattern == "POST /v1/dossiers":
		s, _ = strings.CutPrefix(rec.header.Get("Location"), "/v1/dossiers/")
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return nil
	}
	return &id
}

func replay(w http.ResponseWriter, r *http.Request, pool *pgxpool.Pool, log *slog.Logger, tok int64, key string, hash []byte) {
	var (
		stored      []byte
		status      *int
		contentType *string
		body        []byte
	)
	err := pool.QueryRow(r.Context(), `
		SELECT request_hash, status, content_type, body FROM idempotency_keys WHERE token_id = $1 AND key = $2`,
		tok, key).Scan(&stored, &status, &contentType, &body)
	// A key's row commits with its response (idempotent), and stays.
	switch {
	case err != nil:
		writeError(w, r, log, fmt.Errorf("read idempotency key: %w", err))
	case !bytes.Equal(stored, hash):
		writeProblem(w, problem(codeIdempotencyReused, "cette Idempotency-Key a servi pour une autre requête", nil))
	case status == nil:
		writeError(w, r, log, errors.New("idempotency key stored without its response"))
	default:
		if contentType != nil && *contentType != "" {
			w.Header().Set("Content-Type", *contentType)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(*status)
		_, _ = w.Write(body)
	}
}

// bufferedResponse holds a response until the transaction of its request
// has committed.
type bufferedResponse struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: http.Header{}, status: http.StatusOK}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if !b.wroteHeader {
		b.status, b.wroteHeader = status, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wroteHeader = true
	return b.body.Write(p)
}

// sendTo writes the response to w.
func (b *bufferedResponse) sendTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
