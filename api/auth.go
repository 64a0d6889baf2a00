package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tokenPrefix marks aptflow tokens, so that a leaked one is recognisable
// by secret scanners.
const tokenPrefix = "aptf_"

// CreateToken makes a new API token named name and returns it. Only its
// sha256 is stored: the token is shown once, here.
func CreateToken(ctx context.Context, pool *pgxpool.Pool, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", errors.New("token name must be 1 to 100 characters")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	if _, err := pool.Exec(ctx, `INSERT INTO api_tokens (name, hash) VALUES ($1, $2)`, name, sum[:]); err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return token, nil
}

type ctxKey int

const tokenIDKey ctxKey = 0

// tokenID returns the id of the token that authenticated the request.
func tokenID(ctx context.Context) int64 {
	id, _ := ctx.Value(tokenIDKey).(int64)
	return id
}

// requireToken lets through requests that carry a valid bearer token. The
// token is hashed before the lookup; tokens are 256-bit random, so a plain
// sha256 is enough (no password-hashing cost needed). A valid token is
// remembered for tokenCacheTTL: a client's requests do not each cost a
// query, and a token revoked in the database is refused within that delay.
func requireToken(pool *pgxpool.Pool, log *slog.Logger) func(http.Handler) http.Handler {
	cache := &tokenCache{valid: map[[sha256.Size]byte]cachedToken{}}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(token, tokenPrefix) {
				unauthorized(w)
				return
			}
			sum := sha256.Sum256([]byte(token))
			id, ok := cache.get(sum)
			if !ok {
				err := pool.QueryRow(r.Context(), `SELECT id FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL`, sum[:]).Scan(&id)
				if errors.Is(err, pgx.ErrNoRows) {
					unauthorized(w)
					return
				} else if err != nil {
					writeError(w, r, log, fmt.Errorf("check token: %w", err))
					return
				}
				cache.put(sum, id)
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenIDKey, id)))
		})
	}
}

// Bounds of the valid tokens requireToken remembers.
const (
	tokenCacheTTL = 10 * time.Second
	tokenCacheMax = 1000 // tokens are few; the bound only caps memory
)

// tokenCache remembers valid tokens, by hash, for tokenCacheTTL. Unknown
// tokens are not remembered: guessing costs a query each time, as before,
// and cannot fill the memory.
type tokenCache struct {
	mu    sync.Mutex
	valid map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	id      int64
	expires time.Time
}

func (c *tokenCache) get(sum [sha256.Size]byte) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.valid[sum]
	if !ok || time.Now().After(t.expires) {
		return 0, false
	}
	return t.id, true
}

func (c *tokenCache) put(sum [sha256.Size]byte, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.valid) >= tokenCacheMax {
		clear(c.valid)
	}
	c.valid[sum] = cachedToken{id: id, expires: time.Now().Add(tokenCacheTTL)}
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="aptflow"`)
	writeProblem(w, problem(codeUnauthorized, "jeton d'API manquant ou invalide (Authorization: Bearer …)", nil))
}

// opsOnly protects the ops endpoints: HTTP basic auth when credentials are
// configured, else loopback clients only.
func opsOnly(basicAuth string, trustProxy bool) func(http.Handler) http.Handler {
	user, pass, hasAuth := strings.Cut(basicAuth, ":")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hasAuth {
				u, p, ok := r.BasicAuth()
				// Both comparisons always run: no timing hint on which was wrong.
				okUser := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
				okPass := subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1
				if !ok || !okUser || !okPass {
					w.Header().Set("WWW-Authenticate", `Basic realm="aptflow ops", charset="UTF-8"`)
					writeProblem(w, problem(codeUnauthorized, "identifiants d'exploitation requis", nil))
					return
				}
			} else if !isLoopback(clientIP(r, trustProxy)) {
				writeProblem(w, problem(codeForbidden, "réservé aux clients locaux tant que OPS_BASIC_AUTH n'est pas défini", nil))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// clientIP is the address of the client: the connection's peer, or, when a
// trusted proxy sets it, the last entry of X-Forwarded-For, the peer that
// proxy saw. The entries before it come from the client and prove nothing:
// a client sending "X-Forwarded-For: 127.0.0.1" must not pass for local.
func clientIP(r *http.Request, trustProxy bool) net.IP {
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			return net.ParseIP(strings.TrimSpace(last))
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return net.ParseIP(host)
}

func isLoopback(ip net.IP) bool { return ip != nil && ip.IsLoopback() }
