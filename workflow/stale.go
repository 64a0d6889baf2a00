package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventSignalerInactif is the event of the history row the stale scan
// writes when it flags a dossier (from and to en_construction, no
// instructeur). It is not a transition: the state does not change.
const EventSignalerInactif = "signaler_inactif"

// StaleScan is a stale scan as of At, as BeginStaleScan found it, and how
// far FlagStaleTx has walked its candidates.
//
// A scan runs "as of" a time, its key in stale_scans: every dossier it flags
// gets stale_since = At, and so does its history row. What it writes is
// stamped with the Service's clock: the deliveries' created_at, the scan's
// started_at and finished_at.
type StaleScan struct {
	// At is the time the scan runs as of, as PostgreSQL stores it (UTC,
	// microseconds): the caller's, never the database's now().
	At time.Time
	// Finished says that the scan as of At finished before: there is
	// nothing left to do.
	Finished bool
	// Listed and InstructeurEmails are, once Finished, the counts of the
	// finished scan: the dossiers its instructeur e-mails listed, and those
	// e-mails.
	Listed            int
	InstructeurEmails int
	// Unfinished are the earlier scans killed before their last step,
	// oldest first: their flagged dossiers still wait for their instructeur
	// e-mails, which no later scan would list (see FinishStaleScanTx).
	Unfinished []time.Time

	// cutoff bounds the index range the batches walk: the last activity
	// before which a dossier may be stale under the shortest delay of any
	// procedure; nil when there is no procedure, hence nothing to flag.
	cutoff *time.Time
	// afterAt and afterID are the keyset cursor of the batches, on
	// (last_activity_at, id).
	afterAt time.Time
	afterID int64
}

// BeginStaleScan records the scan as of at in stale_scans, unless it is
// there already, and returns where it stands: finished, or to run (its
// batches with FlagStaleTx, then FinishStaleScanTx), with the earlier scans
// left unfinished. The caller holds the cluster's scan lock: one scan runs
// at a time.
func (s *Service) BeginStaleScan(ctx context.Context, at time.Time) (*StaleScan, error) {
	scan := &StaleScan{At: at.UTC().Truncate(time.Microsecond)}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var finished *time.Time
		if err := tx.QueryRow(ctx, `
			WITH ins AS (INSERT INTO stale_scans (scanned_at, started_at) VALUES ($1, $2) ON CONFLICT DO NOTHING)
			SELECT finished_at, coalesce(dossiers, 0), coalesce(instructeur_emails, 0)
			FROM stale_scans WHERE scanned_at = $1`, scan.At, s.opts.Now(),
		).Scan(&finished, &scan.Listed, &scan.InstructeurEmails); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			// No row: the scan's row is new, and the statement's snapshot
			// does not see what its own INSERT wrote.
			return fmt.Errorf("stale scan %s: %w", scan.At.Format(time.RFC3339), err)
		}
		if scan.Finished = finished != nil; scan.Finished {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT scanned_at FROM stale_scans WHERE finished_at IS NULL AND scanned_at <> $1 ORDER BY scanned_at`, scan.At)
		if err != nil {
			return fmt.Errorf("unfinished stale scans: %w", err)
		}
		if scan.Unfinished, err = pgx.CollectRows(rows, pgx.RowTo[time.Time]); err != nil {
			return fmt.Errorf("unfinished stale scans: %w", err)
		}
		// The index range scan stops at the cutoff of the shortest stale
		// delay; dossiers of procedures with a longer one are checked row
		// by row.
		var minDays *int
		if err := tx.QueryRow(ctx, `SELECT min(stale_after_days) FROM procedures`).Scan(&minDays); err != nil {
			return fmt.Errorf("stale delays: %w", err)
		}
		if minDays != nil {
			cutoff := scan.At.Add(-time.Duration(*minDays) * 24 * time.Hour)
			scan.cutoff = &cutoff
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return scan, nil
}

// FlagStaleTx flags, in tx, the eligible dossiers among the next batch
// candidates of scan (walking the partial index dossiers_stale_scan_live_idx):
// it locks them (SKIP LOCKED: a dossier in the middle of a transition is
// left for the next scan, never waited for), sets stale_since = scan.At,
// writes a history row « signaler_inactif », the applicant's reminder
// (stale_usager) and the webhook event dossier.stale (whose deliveries it
// enqueues in tx), and moves the scan's cursor. It returns the reminders'
// delivery ids, for the caller to enqueue in tx, and more = false once the
// candidates are exhausted.
func (s *Service) FlagStaleTx(ctx context.Context, tx pgx.Tx, scan *StaleScan, batch int) (reminders []int64, more bool, err error) {
	if scan.cutoff == nil {
		return nil, false, nil
	}
	// Candidates: a range of the partial index, read without locks.
	rows, err := tx.Query(ctx, `
		SELECT id, last_activity_at FROM dossiers
		WHERE state = 'en_construction' AND stale_since IS NULL AND deleted_at IS NULL
			AND last_activity_at < $1 AND (last_activity_at, id) > ($2, $3)
		ORDER BY last_activity_at, id
		LIMIT $4`, *scan.cutoff, scan.afterAt, scan.afterID, batch)
	if err != nil {
		return nil, false, fmt.Errorf("stale candidates: %w", err)
	}
	ids := make([]int64, 0, batch)
	var lastAt time.Time
	var lastID int64
	if _, err := pgx.ForEachRow(rows, []any{&lastID, &lastAt}, func() error {
		ids = append(ids, lastID)
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("stale candidates: %w", err)
	}
	if len(ids) == 0 {
		return nil, false, nil
	}
	more = len(ids) == batch
	scan.afterAt, scan.afterID = lastAt, lastID

	// Each candidate is checked again under its lock: a transition or an
	// activity may have committed since it was read. Those locked right now
	// are skipped, not waited for.
	rows, err = tx.Query(ctx, `
		WITH eligible AS (
			SELECT d.id, d.procedure_id, d.usager_email, p.stale_after_days
			FROM dossiers d JOIN procedures p ON p.id = d.procedure_id
			WHERE d.id = ANY($1) AND d.state = 'en_construction' AND d.stale_since IS NULL AND d.deleted_at IS NULL
				AND d.last_activity_at < $2::timestamptz - p.stale_after_days * interval '24 hours'
			FOR UPDATE OF d SKIP LOCKED
		), flagged AS (
			UPDATE dossiers d SET stale_since = $2 FROM eligible e WHERE d.id = e.id
			RETURNING d.id
		), history AS (
			INSERT INTO dossier_history (dossier_id, event, from_state, to_state, at)
			SELECT id, $3, 'en_construction', 'en_construction', $2 FROM flagged
		)
		INSERT INTO email_deliveries (dossier_id, kind, recipient, params, created_at)
		SELECT e.id, $4, e.usager_email, jsonb_build_object('stale_days', e.stale_after_days), $5
		FROM eligible e JOIN flagged f ON f.id = e.id
		ORDER BY e.id
		RETURNING id, dossier_id, (SELECT procedure_id FROM eligible WHERE eligible.id = dossier_id)`,
		ids, scan.At, EventSignalerInactif, MailStaleUsager, s.opts.Now())
	if err != nil {
		return nil, false, fmt.Errorf("flag stale dossiers: %w", err)
	}
	var events []webhookEvent
	var reminder, dossier, procedure int64
	if _, err := pgx.ForEachRow(rows, []any{&reminder, &dossier, &procedure}, func() error {
		reminders = append(reminders, reminder)
		events = append(events, dossierEvent(WebhookDossierStale, procedure, dossier,
			"state", EnConstruction, "stale_since", scan.At))
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("flag stale dossiers: %w", err)
	}
	if err := s.emitTx(ctx, tx, s.opts.Now(), events...); err != nil {
		return nil, false, err
	}
	return reminders, more, nil
}

// FinishStaleScanTx writes, in tx, the instructeur e-mails (stale_instructeur)
// of the scan as of at, one per instructeur listing its dossiers flagged as
// of at and still flagged: those it follows, and those of its procedures
// that nobody follows. It marks the scan finished in the same transaction,
// and returns the deliveries' ids, for the caller to enqueue in tx, and the
// number of dossiers listed. A scan already finished is left alone (no
// delivery). Since the e-mails are derived from the dossiers flagged as of
// at, a scan finished late (its retry, or the next scan) lists them all.
func (s *Service) FinishStaleScanTx(ctx context.Context, tx pgx.Tx, at time.Time) (deliveries []int64, listed int, err error) {
	var finished *time.Time
	if err := tx.QueryRow(ctx, `SELECT finished_at FROM stale_scans WHERE scanned_at = $1 FOR UPDATE`, at).Scan(&finished); err != nil {
		return nil, 0, fmt.Errorf("stale scan %s: %w", at.Format(time.RFC3339), err)
	}
	if finished != nil {
		return nil, 0, nil
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM dossiers WHERE stale_since = $1 AND state = 'en_construction'`, at).Scan(&listed); err != nil {
		return nil, 0, fmt.Errorf("stale dossiers of %s: %w", at.Format(time.RFC3339), err)
	}
	now := s.opts.Now()
	// Whom to tell of each dossier: its followers, or, when nobody follows
	// it, its procedure's instructeurs. Grouped in SQL, so that the scan
	// holds one row per instructeur, not per dossier. The e-mail's delay is
	// the shortest of the procedures of its dossiers: each of them has been
	// inactive at least that long.
	rows, err := tx.Query(ctx, `
		WITH stale AS (
			SELECT id, procedure_id FROM dossiers WHERE stale_since = $1 AND state = 'en_construction'
		), recipients AS (
			SELECT f.instructeur_id, s.id AS dossier_id, s.procedure_id
			FROM stale s JOIN follows f ON f.dossier_id = s.id
			UNION ALL
			SELECT pi.instructeur_id, s.id, s.procedure_id
			FROM stale s JOIN procedure_instructeurs pi ON pi.procedure_id = s.procedure_id
			WHERE NOT EXISTS (SELECT 1 FROM follows f WHERE f.dossier_id = s.id)
		)
		INSERT INTO email_deliveries (dossier_id, kind, recipient, params, created_at)
		SELECT NULL, $2, i.email, jsonb_build_object(
			'instructeur_id', i.id,
			'dossier_ids', array_agg(r.dossier_id ORDER BY r.dossier_id),
			'stale_days', min(p.stale_after_days)), $3
		FROM recipients r
		JOIN instructeurs i ON i.id = r.instructeur_id
		JOIN procedures p ON p.id = r.procedure_id
		GROUP BY i.id, i.email
		ORDER BY i.id
		RETURNING id`, at, MailStaleInstructeur, now)
	if err != nil {
		return nil, 0, fmt.Errorf("instructeur e-mails of %s: %w", at.Format(time.RFC3339), err)
	}
	if deliveries, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return nil, 0, fmt.Errorf("instructeur e-mails of %s: %w", at.Format(time.RFC3339), err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE stale_scans SET finished_at = $2, dossiers = $3, instructeur_emails = $4
		WHERE scanned_at = $1`, at, now, listed, len(deliveries)); err != nil {
		return nil, 0, fmt.Errorf("finish stale scan %s: %w", at.Format(time.RFC3339), err)
	}
	return deliveries, listed, nil
}
