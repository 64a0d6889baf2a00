package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aptflow/aptflow/workflow"
)

// token is what a request's bearer token may do.
type token struct {
	id         int64
	scope      Scope
	procedures []int64 // nil: every procedure
	expiresAt  *time.Time
	revoked    bool
}

type ctxKey int

const tokenKey ctxKey = 0

// tokenID returns the id of the token that authenticated the request.
func tokenID(ctx context.Context) int64 {
	t, _ := ctx.Value(tokenKey).(*token)
	if t == nil {
		return 0
	}
	return t.id
}

// How long a process trusts what it knows of the tokens.
const (
	// tokenFreshFor: a token known here is trusted only while the
	// generation was read less than this long ago; past it, the request
	// waits for a new read. A revocation is refused by every process
	// within this delay of its commit (DESIGN.md: 2 seconds), plus one
	// query's time.
	tokenFreshFor = time.Second
	// tokenRefreshAfter: past this age, a request reads the generation
	// again in the background, so that under a steady load no request
	// waits for it.
	tokenRefreshAfter = tokenFreshFor / 2
	// lastUsedEvery: a token's last_used_at is written at most this
	// often per process.
	lastUsedEvery = time.Minute
	// tokenCacheMax bounds the tokens a process remembers: tokens are
	// few; the bound only caps memory.
	tokenCacheMax = 1000
)

// tokenAuth authenticates bearer tokens without a query per request.
//
// It remembers each token it has looked up (by sha256: the token itself is
// never kept) with the generation of the tokens' table it read with it
// (migration 00004: any revocation, expiry, scope or procedure change bumps
// it in its own transaction). A remembered token is trusted while that
// generation is still the current one, as read by this process less than
// tokenFreshFor ago: a process reads the generation at most twice a
// second, and not at all while idle. The generation is a row read by a
// plain query, not a LISTEN: it works behind PgBouncer in transaction
// mode too. Unknown tokens are not remembered: guessing costs a query
// each time and cannot fill the memory.
type tokenAuth struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time

	mu       sync.Mutex
	gen      int64         // the current generation, as last read
	readAt   time.Time     // when it was last read, successfully
	reading  chan struct{} // closed when the read under way ends; nil if none
	readErr  error         // the error of the last read
	remember map[[sha256.Size]byte]*knownToken
}

// knownToken is a token as read from the database.
type knownToken struct {
	token
	gen int64 // the generation it was read with
	// used is its last use here; saved, the last_used_at the database has
	// (as far as this process knows).
	used, saved time.Time
}

func newTokenAuth(pool *pgxpool.Pool, log *slog.Logger) *tokenAuth {
	return &tokenAuth{pool: pool, log: log, now: time.Now, remember: map[[sha256.Size]byte]*knownToken{}}
}

// errTokenUnknown, errTokenRevoked and errTokenExpired are 401s.
var (
	errTokenUnknown = errors.New("jeton d'API manquant ou invalide (Authorization: Bearer …)")
	errTokenRevoked = errors.New("jeton d'API révoqué")
	errTokenExpired = errors.New("jeton d'API expiré")
)

// authenticate returns the token of r, an errToken… error, or another
// error (the database is unreachable).
func (a *tokenAuth) authenticate(r *http.Request) (*token, error) {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(raw, tokenPrefix) {
		return nil, errTokenUnknown
	}
	sum := sha256.Sum256([]byte(raw))
	if err := a.fresh(r.Context()); err != nil {
		return nil, err
	}
	now := a.now()
	a.mu.Lock()
	k := a.remember[sum]
	if k != nil && k.gen == a.gen {
		k.used = now
		t := k.token
		a.mu.Unlock()
		return t.check(now)
	}
	a.mu.Unlock()

	k, err := a.lookup(r.Context(), sum, now)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if k.gen > a.gen {
		// Newer than the last read: what was remembered before is stale.
		a.gen = k.gen
	}
	if len(a.remember) >= tokenCacheMax {
		clear(a.remember)
	}
	a.remember[sum] = k
	a.mu.Unlock()
	return k.check(now)
}

// check refuses a revoked or expired token.
func (t token) check(now time.Time) (*token, error) {
	switch {
	case t.revoked:
		return nil, errTokenRevoked
	case t.expiresAt != nil && !now.Before(*t.expiresAt):
		return nil, errTokenExpired
	}
	return &t, nil
}

// lookup reads a token and the generation in one query, and notes its use
// if the database's last_used_at is a minute old or more.
func (a *tokenAuth) lookup(ctx context.Context, sum [sha256.Size]byte, now time.Time) (*knownToken, error) {
	k := &knownToken{used: now}
	var scope string
	var saved *time.Time
	var revokedAt *time.Time
	err := a.pool.QueryRow(ctx, `
		WITH t AS (
			SELECT id, scope, procedures, expires_at, revoked_at, last_used_at FROM api_tokens WHERE hash = $1
		), used AS (
			UPDATE api_tokens a SET last_used_at = $2 FROM t
			WHERE a.id = t.id AND t.revoked_at IS NULL AND (t.last_used_at IS NULL OR t.last_used_at <= $3)
			RETURNING a.last_used_at
		)
		SELECT t.id, t.scope, t.procedures, t.expires_at, t.revoked_at,
			coalesce((SELECT last_used_at FROM used), t.last_used_at), g.generation
		FROM t, api_token_generation g`, sum[:], now, now.Add(-lastUsedEvery),
	).Scan(&k.id, &scope, &k.procedures, &k.expiresAt, &revokedAt, &saved, &k.gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errTokenUnknown
	} else if err != nil {
		return nil, fmt.Errorf("check token: %w", err)
	}
	k.scope, k.revoked = Scope(scope), revokedAt != nil
	if saved != nil {
		k.saved = *saved
	}
	return k, nil
}

// fresh makes sure the generation was read less than tokenFreshFor ago,
// waiting for a read if not, and starts a read in the background past
// tokenRefreshAfter.
func (a *tokenAuth) fresh(ctx context.Context) error {
	a.mu.Lock()
	age := a.now().Sub(a.readAt)
	if age < tokenRefreshAfter {
		a.mu.Unlock()
		return nil
	}
	done := a.reading
	if done == nil {
		done = make(chan struct{})
		a.reading = done
		go a.read(done)
	}
	a.mu.Unlock()
	if age < tokenFreshFor {
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.now().Sub(a.readAt) >= tokenFreshFor {
		return fmt.Errorf("read tokens' generation: %w", a.readErr)
	}
	return nil
}

// read reads the generation and, in the same round trip, writes the
// last_used_at of the tokens used here since they were last written, a
// minute ago or more. A new generation forgets every remembered token.
func (a *tokenAuth) read(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := a.now()
	a.mu.Lock()
	var ids []int64
	var used []time.Time
	var due []*knownToken
	for _, k := range a.remember {
		if !k.revoked && k.used.Sub(k.saved) >= lastUsedEvery {
			ids, used = append(ids, k.id), append(used, k.used)
			due = append(due, k)
		}
	}
	a.mu.Unlock()

	b := &pgx.Batch{}
	var gen int64
	b.Queue(`SELECT generation FROM api_token_generation`).QueryRow(func(row pgx.Row) error { return row.Scan(&gen) })
	if len(ids) > 0 {
		b.Queue(`
			UPDATE api_tokens a SET last_used_at = v.used
			FROM unnest($1::bigint[], $2::timestamptz[]) v(id, used)
			WHERE a.id = v.id AND (a.last_used_at IS NULL OR a.last_used_at < v.used)`, ids, used)
	}
	err := a.pool.SendBatch(ctx, b).Close()

	a.mu.Lock()
	defer a.mu.Unlock()
	a.reading, a.readErr = nil, err
	defer close(done)
	if err != nil {
		a.log.Warn("cannot read the tokens' generation", "err", err)
		return
	}
	if gen != a.gen {
		clear(a.remember)
		a.gen = gen
	}
	a.readAt = start
	for i, k := range due {
		k.saved = used[i]
	}
}

// authorize lets through requests whose token may take the route: a
// valid token (else 401), of one of scopes or admin (else 403
// insufficient_scope), seeing every procedure if every is set. The
// token's procedures go in the request's context: the workflow finds
// nothing outside them (workflow.OnlyProcedures).
func (a *tokenAuth) authorize(log *slog.Logger, scopes []Scope, every bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := a.authenticate(r)
		switch {
		case errors.Is(err, errTokenUnknown), errors.Is(err, errTokenRevoked), errors.Is(err, errTokenExpired):
			w.Header().Set("WWW-Authenticate", `Bearer realm="aptflow"`)
			if !errors.Is(err, errTokenUnknown) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="aptflow", error="invalid_token"`)
			}
			writeProblem(w, problem(codeUnauthorized, err.Error(), nil))
			return
		case err != nil:
			writeError(w, r, log, err)
			return
		}
		if err := t.may(scopes, every); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aptflow", error="insufficient_scope"`)
			writeError(w, r, log, err)
			return
		}
		ctx := context.WithValue(r.Context(), tokenKey, t)
		if t.procedures != nil {
			ctx = workflow.OnlyProcedures(ctx, t.procedures)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// may says whether t takes a route open to scopes (and to admin), which
// needs a token of every procedure if every is set: 403
// insufficient_scope if not.
func (t *token) may(scopes []Scope, every bool) error {
	if t.scope != ScopeAdmin && !slices.Contains(scopes, t.scope) {
		return errf(codeInsufficientScope, fmt.Sprintf("un jeton %s ne peut pas faire cette action", t.scope))
	}
	if every && t.procedures != nil {
		return errf(codeInsufficientScope, "un jeton limité à certaines procédures ne peut pas faire cette action")
	}
	return nil
}

// requireScope is authorize's check inside a handler, for a route whose
// body says which scope it takes (a message from the applicant or from an
// instructeur).
func requireScope(r *http.Request, s Scope) error {
	t, _ := r.Context().Value(tokenKey).(*token)
	if t == nil {
		return errf(codeUnauthorized, errTokenUnknown.Error())
	}
	return t.may([]Scope{s}, false)
}
