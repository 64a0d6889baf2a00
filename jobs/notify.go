package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

// querier is what a pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// riverpgxv5Driver names River's pgx driver type for JobCompleteTx.
type riverpgxv5Driver = riverpgxv5.Driver

// NotifyFollowerArgs tells one follower about the activity on one dossier
// since the last time they were told.
type NotifyFollowerArgs struct {
	DossierID     int64 `json:"dossier_id"`
	InstructeurID int64 `json:"instructeur_id"`
}

// Kind is the job kind; it never changes once shipped.
func (NotifyFollowerArgs) Kind() string { return "notify_follower" }

// InsertOpts puts notifications on their own queue.
func (NotifyFollowerArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueNotification}
}

// NotifyFollowerWorker turns the new activity on a dossier into one e-mail
// to one follower. Each activity schedules one of these jobs at the end of
// the coalescing window; the first to run takes every activity so far and
// the others find nothing new, so a burst becomes one e-mail.
type NotifyFollowerWorker struct {
	river.WorkerDefaults[NotifyFollowerArgs]
	cfg  Config
	deps Deps
}

// Work writes the delivery, enqueues its e-mail, advances the follower's
// cursor and completes the job, in one transaction.
func (w *NotifyFollowerWorker) Work(ctx context.Context, job *river.Job[NotifyFollowerArgs]) error {
	a := job.Args
	return pgx.BeginFunc(ctx, w.deps.Pool, func(tx pgx.Tx) error {
		var cursor int64
		var mode, email string
		err := tx.QueryRow(ctx, `
			SELECT f.notified_through, i.notifications, i.email
			FROM follows f JOIN instructeurs i ON i.id = f.instructeur_id
			WHERE f.dossier_id = $1 AND f.instructeur_id = $2
			FOR UPDATE OF f`, a.DossierID, a.InstructeurID).Scan(&cursor, &mode, &email)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && mode != workflow.NotifyInstant) {
			// Unfollowed, or now on daily digests (which read the same cursor)
			// or on nothing: no instant e-mail.
			_, err := river.JobCompleteTx[*riverpgxv5Driver](ctx, tx, job)
			return err
		} else if err != nil {
			return fmt.Errorf("follow of dossier %d: %w", a.DossierID, err)
		}
		ids, last, err := newActivities(ctx, tx, a.DossierID, a.InstructeurID, cursor, nil)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			if err := enqueueDelivery(ctx, tx, a.DossierID, workflow.MailNotification, email,
				deliveryParams{InstructeurID: a.InstructeurID, ActivityIDs: ids}, w.cfg); err != nil {
				return err
			}
		}
		if last > cursor {
			if _, err := tx.Exec(ctx, `UPDATE follows SET notified_through = $3 WHERE dossier_id = $1 AND instructeur_id = $2`,
				a.DossierID, a.InstructeurID, last); err != nil {
				return err
			}
		}
		_, err = river.JobCompleteTx[*riverpgxv5Driver](ctx, tx, job)
		return err
	})
}

// newActivities returns the ids of the activities of a dossier after cursor
// that instructeur did not author, and the last activity id of the dossier.
// With until set, only the activities at or before it count.
func newActivities(ctx context.Context, q querier, dossierID, instructeurID, cursor int64, until *time.Time) (ids []int64, last int64, err error) {
	rows, err := q.Query(ctx, `
		SELECT id, author_instructeur_id IS NOT DISTINCT FROM $3 FROM activities
		WHERE dossier_id = $1 AND id > $2 AND ($4::timestamptz IS NULL OR at <= $4)
		ORDER BY id`, dossierID, cursor, instructeurID, until)
	if err != nil {
		return nil, 0, fmt.Errorf("activities of dossier %d: %w", dossierID, err)
	}
	defer rows.Close()
	last = cursor
	for rows.Next() {
		var id int64
		var own bool
		if err := rows.Scan(&id, &own); err != nil {
			return nil, 0, err
		}
		if !own {
			ids = append(ids, id)
		}
		last = id
	}
	return ids, last, rows.Err()
}

// enqueueDelivery writes a delivery and inserts its send_email job in tx,
// with the River client of the running job.
func enqueueDelivery(ctx context.Context, tx pgx.Tx, dossierID int64, kind, recipient string, params deliveryParams, cfg Config) error {
	return enqueueDeliveryWith(ctx, river.ClientFromContext[pgx.Tx](ctx), tx, dossierID, kind, recipient, params, cfg)
}

// Inserter inserts jobs in a transaction; *river.Client is one.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// enqueueDeliveryWith is enqueueDelivery with an explicit client, for
// commands that run outside a job.
func enqueueDeliveryWith(ctx context.Context, client Inserter, tx pgx.Tx, dossierID int64, kind, recipient string, params deliveryParams, cfg Config) error {
	id, err := workflow.AddDeliveryTx(ctx, tx, dossierID, kind, recipient, params, time.Now())
	if err != nil {
		return err
	}
	_, err = client.InsertTx(ctx, tx, SendEmailArgs{DeliveryID: id}, &river.InsertOpts{MaxAttempts: cfg.EmailMaxAttempts})
	return err
}

// activity is an activity row as e-mails show it.
type activity struct {
	templates.Activity
	body        string
	prenom, nom string // the applicant, for digests
}

func loadActivities(ctx context.Context, q querier, ids []int64) ([]activity, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `
		SELECT a.id, a.dossier_id, a.kind, a.author, a.body, a.at,
			d.demandeur->>'prenom', d.demandeur->>'nom'
		FROM activities a JOIN dossiers d ON d.id = a.dossier_id
		WHERE a.id = ANY($1) ORDER BY a.dossier_id, a.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("load activities: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (activity, error) {
		var a activity
		var id int64
		var prenom, nom *string
		err := r.Scan(&id, &a.DossierID, &a.Kind, &a.Author, &a.body, &a.At, &prenom, &nom)
		a.Excerpt = excerpt(a.body, 280)
		if prenom != nil && nom != nil {
			a.prenom, a.nom = *prenom, *nom
		}
		return a, err
	})
}

// groupActivities returns the activities flat (one dossier) and, for a
// digest, grouped by dossier.
func groupActivities(acts []activity, byDossier bool) ([]templates.Activity, []templates.DossierSummary) {
	flat := make([]templates.Activity, 0, len(acts))
	var groups []templates.DossierSummary
	for _, a := range acts {
		flat = append(flat, a.Activity)
		if !byDossier {
			continue
		}
		if n := len(groups); n == 0 || groups[n-1].ID != a.DossierID {
			groups = append(groups, templates.DossierSummary{ID: a.DossierID, Prenom: a.prenom, Nom: a.nom})
		}
		g := &groups[len(groups)-1]
		g.Activities = append(g.Activities, a.Activity)
		if a.At.After(g.LastActivityAt) {
			g.LastActivityAt = a.At
		}
	}
	return flat, groups
}

// excerpt cuts s to at most n characters, on a rune boundary.
func excerpt(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
