package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// activityParams are the params of a notification or a digest delivery:
// the instructeur it is for and the activities it tells of, which the
// e-mail renders.
type activityParams struct {
	InstructeurID int64   `json:"instructeur_id"`
	ActivityIDs   []int64 `json:"activity_ids"`
}

// NotifyFollowerTx writes, in tx, the instant notification of one follower
// of a dossier: one delivery (kind notification) listing the activities
// after the follow's cursor that the follower did not author, and moves the
// cursor past them. The follow row stays locked until tx ends, so that two
// runs for the same pair take each activity once: a burst becomes one
// e-mail, and the runs after it find nothing new.
//
// It returns the delivery's id, for the caller to enqueue in tx, or 0 when
// there is nothing to send: no new activity, the dossier no longer followed
// by them, or the follower now on daily digests (which read the same
// cursor) or on nothing.
func (s *Service) NotifyFollowerTx(ctx context.Context, tx pgx.Tx, dossierID, instructeurID int64) (deliveryID int64, err error) {
	// The dossier first: a decision locks it, then the follows its trigger
	// closes (migrations/00009_scale.sql). Locking the follow first, then
	// waiting on the dossier for the delivery's foreign key, would
	// deadlock with it.
	if _, err := tx.Exec(ctx, `SELECT FROM dossiers WHERE id = $1 FOR KEY SHARE`, dossierID); err != nil {
		return 0, fmt.Errorf("dossier %d: %w", dossierID, err)
	}
	var cursor int64
	var mode, email string
	err = tx.QueryRow(ctx, `
		SELECT f.notified_through, i.notifications, i.email
		FROM follows f JOIN instructeurs i ON i.id = f.instructeur_id
		WHERE f.dossier_id = $1 AND f.instructeur_id = $2
		FOR UPDATE OF f`, dossierID, instructeurID).Scan(&cursor, &mode, &email)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && mode != NotifyInstant) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("follow of dossier %d: %w", dossierID, err)
	}
	ids, err := takeActivities(ctx, tx, dossierID, instructeurID, cursor, nil)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return addDelivery(ctx, tx, dossierID, MailNotification, email,
		activityParams{InstructeurID: instructeurID, ActivityIDs: ids}, s.opts.Now())
}

// DailyInstructeurs returns, in order, the ids of at most limit instructeurs
// on daily digests whose id is greater than after: the pages of a digest
// run.
func (s *Service) DailyInstructeurs(ctx context.Context, after int64, limit int) ([]int64, error) {
	var ids []int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id FROM instructeurs WHERE notifications = $1 AND id > $2 ORDER BY id LIMIT $3`, NotifyDaily, after, limit)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("daily instructeurs: %w", err)
	}
	return ids, nil
}

// DigestTx writes, in tx, the daily digest of one instructeur: one delivery
// (kind digest, no dossier) listing the activities on the dossiers they
// follow after each follow's cursor, at or before until, and not their own,
// and moves the cursors past them. The instructeur's row and their follow
// rows stay locked until tx ends, so that no activity is told twice,
// whatever crashes or reruns.
//
// It returns the delivery's id, for the caller to enqueue in tx, and the
// number of activities it lists; the id is 0 when there is nothing to send
// or the instructeur is no longer on daily digests.
func (s *Service) DigestTx(ctx context.Context, tx pgx.Tx, instructeurID int64, until time.Time) (deliveryID int64, activities int, err error) {
	var email, mode string
	if err := tx.QueryRow(ctx, `SELECT email, notifications FROM instructeurs WHERE id = $1 FOR UPDATE`, instructeurID).Scan(&email, &mode); err != nil {
		return 0, 0, fmt.Errorf("instructeur %d: %w", instructeurID, err)
	}
	if mode != NotifyDaily {
		return 0, 0, nil // switched meanwhile
	}
	rows, err := tx.Query(ctx, `
		SELECT dossier_id, notified_through FROM follows
		WHERE instructeur_id = $1 ORDER BY dossier_id FOR UPDATE`, instructeurID)
	if err != nil {
		return 0, 0, fmt.Errorf("follows of instructeur %d: %w", instructeurID, err)
	}
	type follow struct{ dossier, cursor int64 }
	follows, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (follow, error) {
		var f follow
		return f, r.Scan(&f.dossier, &f.cursor)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("follows of instructeur %d: %w", instructeurID, err)
	}
	var all []int64
	for _, f := range follows {
		ids, err := takeActivities(ctx, tx, f.dossier, instructeurID, f.cursor, &until)
		if err != nil {
			return 0, 0, err
		}
		all = append(all, ids...)
	}
	if len(all) == 0 {
		return 0, 0, nil
	}
	deliveryID, err = addDelivery(ctx, tx, 0, MailDigest, email,
		activityParams{InstructeurID: instructeurID, ActivityIDs: all}, s.opts.Now())
	return deliveryID, len(all), err
}

// takeActivities returns the ids of the activities of a dossier after
// cursor that the instructeur did not author (with until set, only those at
// or before it), and moves the follow's cursor past every activity it read,
// their own included. The caller holds the follow row's lock.
func takeActivities(ctx context.Context, tx pgx.Tx, dossierID, instructeurID, cursor int64, until *time.Time) ([]int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT id, author_instructeur_id IS NOT DISTINCT FROM $3 FROM activities
		WHERE dossier_id = $1 AND id > $2 AND ($4::timestamptz IS NULL OR at <= $4)
		ORDER BY id`, dossierID, cursor, instructeurID, until)
	if err != nil {
		return nil, fmt.Errorf("activities of dossier %d: %w", dossierID, err)
	}
	var ids []int64
	last := cursor
	var id int64
	var own bool
	if _, err := pgx.ForEachRow(rows, []any{&id, &own}, func() error {
		if !own {
			ids = append(ids, id)
		}
		last = id
		return nil
	}); err != nil {
		return nil, fmt.Errorf("activities of dossier %d: %w", dossierID, err)
	}
	if last > cursor {
		if _, err := tx.Exec(ctx, `UPDATE follows SET notified_through = $3 WHERE dossier_id = $1 AND instructeur_id = $2`,
			dossierID, instructeurID, last); err != nil {
			return nil, fmt.Errorf("notification cursor of dossier %d: %w", dossierID, err)
		}
	}
	return ids, nil
}
