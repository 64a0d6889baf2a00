package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Scope is what a token may do (DESIGN.md « Access: scoped tokens »); the
// route table (routes.go) says which scopes each route takes.
type Scope string

// The scopes of a token.
const (
	// ScopeAdmin may do everything, including creating procedures and
	// putting instructeurs on them.
	ScopeAdmin Scope = "admin"
	// ScopeInstruction is the instructeurs' back office: reading dossiers
	// and tabs, events, follows, instructeur messages, avis, preferences.
	ScopeInstruction Scope = "instruction"
	// ScopeDepot is the applicant's side: creating and changing dossiers,
	// the applicant's messages, reading its dossiers.
	ScopeDepot Scope = "depot"
	// ScopeLecture may only read (GET).
	ScopeLecture Scope = "lecture"
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeAdmin, ScopeInstruction, ScopeDepot, ScopeLecture}

// tokenPrefix marks aptflow tokens, so that a leaked one is recognisable
// by secret scanners.
const tokenPrefix = "aptf_"

// TokenOptions describe a new token.
type TokenOptions struct {
	Name string
	// Scope is ScopeAdmin when empty.
	Scope Scope
	// Procedures limits the token to these procedures; none: every one.
	Procedures []int64
	// Expires is the token's lifetime; 0: it does not expire.
	Expires time.Duration
}

// CreateToken makes a new admin token on every procedure named name and
// returns it: see NewToken.
func CreateToken(ctx context.Context, pool *pgxpool.Pool, name string) (string, error) {
	return NewToken(ctx, pool, TokenOptions{Name: name})
}

// NewToken makes a new API token and returns it. Only its sha256 is
// stored: the token is shown once, here. Each procedure must exist.
func NewToken(ctx context.Context, pool *pgxpool.Pool, o TokenOptions) (string, error) {
	o.Name = strings.TrimSpace(o.Name)
	if o.Name == "" || len(o.Name) > 100 {
		return "", errors.New("token name must be 1 to 100 characters")
	}
	if o.Scope == "" {
		o.Scope = ScopeAdmin
	}
	if !slices.Contains(Scopes, o.Scope) {
		return "", fmt.Errorf("scope %q: admin, instruction, depot or lecture expected", o.Scope)
	}
	if o.Expires < 0 {
		return "", errors.New("expiry must be a positive duration")
	}
	var procs []int64
	if len(o.Procedures) > 0 {
		procs = slices.Clone(o.Procedures)
		slices.Sort(procs)
		procs = slices.Compact(procs)
	}
	var expires *time.Time
	if o.Expires > 0 {
		t := time.Now().Add(o.Expires)
		expires = &t
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if procs != nil {
			rows, err := tx.Query(ctx, `SELECT id FROM procedures WHERE id = ANY($1) FOR SHARE`, procs)
			if err != nil {
				return err
			}
			found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			for _, id := range procs {
				if !slices.Contains(found, id) {
					return fmt.Errorf("procedure %d does not exist", id)
				}
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_tokens (name, hash, scope, procedures, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			o.Name, sum[:], string(o.Scope), procs, expires)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return token, nil
}

// TokenInfo is what `aptflow token list` shows of a token: never the token.
type TokenInfo struct {
	ID         int64
	Name       string
	Scope      Scope
	Procedures []int64 // nil: every procedure
	CreatedAt  time.Time
	// LastUsedAt is kept to the minute (see tokenAuth).
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

const tokenInfoColumns = `id, name, scope, procedures, created_at, last_used_at, expires_at, revoked_at`

func scanTokenInfo(row pgx.CollectableRow) (TokenInfo, error) {
	var t TokenInfo
	err := row.Scan(&t.ID, &t.Name, &t.Scope, &t.Procedures, &t.CreatedAt, &t.LastUsedAt, &t.ExpiresAt, &t.RevokedAt)
	return t, err
}

// ListTokens returns every token, oldest first.
func ListTokens(ctx context.Context, pool *pgxpool.Pool) ([]TokenInfo, error) {
	rows, err := pool.Query(ctx, `SELECT `+tokenInfoColumns+` FROM api_tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanTokenInfo)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return list, nil
}

// RevokeToken revokes the token with this id (all digits) or this name,
// which must then name one token. Every process refuses it within
// tokenFreshFor of the commit. A token revoked before stays revoked as of
// its first revocation; already reports it.
func RevokeToken(ctx context.Context, pool *pgxpool.Pool, idOrName string) (t TokenInfo, already bool, err error) {
	var id *int64
	if n, err := strconv.ParseInt(idOrName, 10, 64); err == nil {
		id = &n
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+tokenInfoColumns+` FROM api_tokens
			WHERE CASE WHEN $1::bigint IS NULL THEN name = $2 ELSE id = $1 END FOR UPDATE`, id, idOrName)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, scanTokenInfo)
		switch {
		case err != nil:
			return err
		case len(found) == 0:
			return fmt.Errorf("no token %q", idOrName)
		case len(found) > 1:
			return fmt.Errorf("%d tokens are named %q: revoke one by its id (aptflow token list)", len(found), idOrName)
		}
		t = found[0]
		if t.RevokedAt != nil {
			already = true
			return nil
		}
		return tx.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 RETURNING revoked_at`, t.ID).Scan(&t.RevokedAt)
	})
	if err != nil {
		return TokenInfo{}, false, fmt.Errorf("revoke token: %w", err)
	}
	return t, already, nil
}
