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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// claimLease is how long a key claimed by a request that has not answered
// yet stays in use. No request runs that long (the server cuts a response
// after 60 s): a claim older than that was abandoned.
const claimLease = 2 * time.Minute

// idempotent replays the first response to a POST for the same
// Idempotency-Key (per token). The key is claimed before the handler runs, so
// a concurrent retry gets 409 idempotency_key_in_use instead of running the
// request twice; the same key with another request is 422. A request that
// failed with a 5xx releases its key, so that it can be retried; one that
// never answered (see claimLease) loses it.
func idempotent(pool *pgxpool.Pool, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get("Idempotency-Key")
			if key == "" {
				next.ServeHTTP(w, r)
				return
			}
			if len(key) > maxIdempotencyKey {
				writeProblem(w, problem(codeIdempotencyReused, "Idempotency-Key trop longue (255 caractères au plus)", nil))
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

			// A claim left without an answer past claimLease is taken
			// over: its process died mid-request, or the database went
			// away before the claim could be released, and the key would
			// otherwise answer idempotency_key_in_use forever.
			tag, err := pool.Exec(ctx, `
				INSERT INTO idempotency_keys (token_id, key, request_hash) VALUES ($1, $2, $3)
				ON CONFLICT (token_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, created_at = now()
				WHERE idempotency_keys.status IS NULL
					AND idempotency_keys.created_at < now() - $4 * interval '1 second'`,
				tok, key, hash, int(claimLease/time.Second))
			if err != nil {
				writeError(w, r, log, fmt.Errorf("claim idempotency key: %w", err))
				return
			}
			if tag.RowsAffected() == 0 {
				replay(w, r, pool, log, tok, key, hash)
				return
			}
			// The response is stored even if the client went away meanwhile.
			ctx = context.WithoutCancel(ctx)
			defer func() {
				if v := recover(); v != nil {
					_, _ = pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2`, tok, key)
					panic(v)
				}
			}()
			rec := &recorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			if rec.status >= 500 {
				_, err = pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2`, tok, key)
			} else {
				_, err = pool.Exec(ctx, `
					UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5
					WHERE token_id = $1 AND key = $2`, tok, key, rec.status, rec.Header().Get("Content-Type"), rec.body.Bytes())
			}
			if err != nil {
				log.ErrorContext(ctx, "store idempotent response", "err", err)
			}
		})
	}
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
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// Released by a failed first request between our insert and select.
		writeProblem(w, problem(codeIdempotencyBusy, "requête en cours avec cette Idempotency-Key : réessayez", nil))
	case err != nil:
		writeError(w, r, log, fmt.Errorf("read idempotency key: %w", err))
	case !bytes.Equal(stored, hash):
		writeProblem(w, problem(codeIdempotencyReused, "cette Idempotency-Key a servi pour une autre requête", nil))
	case status == nil:
		writeProblem(w, problem(codeIdempotencyBusy, "requête en cours avec cette Idempotency-Key : réessayez", nil))
	default:
		if contentType != nil && *contentType != "" {
			w.Header().Set("Content-Type", *contentType)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(*status)
		_, _ = w.Write(body)
	}
}

// recorder keeps a copy of the response for replays.
type recorder struct {
	http.ResponseWriter
	status      int
	body        bytes.Buffer
	wroteHeader bool
}

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
