// Package explain opens PostgreSQL connections that explain every statement
// they run: auto_explain's EXPLAIN (ANALYZE, BUFFERS) of each, sent back to
// the client as a LOG message and handed to a Log. The plan tests
// (workflow's TestTabPlans) and `make bench-scale` read the plans of the
// real queries of the Service's methods this way, whatever their shape,
// batches included. LOAD 'auto_explain' needs a superuser.
package explain

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Plan is one statement's plan, and the shared buffers it touched (hit in
// PostgreSQL's cache or read), children and subplans included.
type Plan struct {
	Query   string
	Buffers int64
	// Text is the plan as EXPLAIN prints it: JSON, or text with Text set
	// on the Log.
	Text string
}

// Log collects the plans of the statements of the pools it opened.
type Log struct {
	// TextFormat asks for plans in EXPLAIN's text format (Buffers is then
	// 0): for people to read. Set it before Open.
	TextFormat bool

	mu    sync.Mutex
	plans []Plan
	errs  []error
}

// Open returns a pool of at most conns connections on url whose every
// statement is explained into l.
func (l *Log) Open(ctx context.Context, url string, conns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = conns
	format := "json"
	if l.TextFormat {
		format = "text"
	}
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { l.add(n) }
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `LOAD 'auto_explain';
			SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;
			SET auto_explain.log_buffers = on; SET auto_explain.log_timing = off;
			SET auto_explain.log_format = `+format+`; SET client_min_messages = log`)
		return err
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

func (l *Log) add(n *pgconn.Notice) {
	_, text, ok := strings.Cut(n.Message, "plan:\n")
	if n.Severity != "LOG" || !ok {
		return
	}
	p := Plan{Text: text}
	var err error
	if l.TextFormat {
		// "Query Text: <the query>\n<the plan>": the plan starts at the
		// first line that is not indented, the query's own lines being so
		// in aptflow's source.
		lines := strings.Split(strings.TrimPrefix(text, "Query Text: "), "\n")
		i := 1
		for i < len(lines) && strings.TrimLeft(lines[i], " \t") != lines[i] {
			i++
		}
		p.Query, p.Text = strings.Join(lines[:i], "\n"), strings.Join(lines[i:], "\n")
	} else {
		var j struct {
			Query string `json:"Query Text"`
			Plan  struct {
				Hit  int64 `json:"Shared Hit Blocks"`
				Read int64 `json:"Shared Read Blocks"`
			}
		}
		if err = json.Unmarshal([]byte(text), &j); err == nil {
			p.Query, p.Buffers = j.Query, j.Plan.Hit+j.Plan.Read
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("auto_explain: %w: %.200s", err, text))
		return
	}
	l.plans = append(l.plans, p)
}

// Take returns the plans collected since the last Take, and the errors met
// reading them.
func (l *Log) Take() ([]Plan, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, errs := l.plans, l.errs
	l.plans, l.errs = nil, nil
	if len(errs) > 0 {
		return p, fmt.Errorf("%d plans unreadable, the first: %w", len(errs), errs[0])
	}
	return p, nil
}
