package workflow

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// PurgeRun is one run of the purge as of At, and how far its batches have
// walked. The purge's steps are idempotent by themselves (a noticed
// dossier is not noticed again, a purged one is not a candidate any more),
// so a run needs no bookkeeping table: a rerun as of the same time, or the
// next night's, does what a killed run left.
type PurgeRun struct {
	// At is the time the run is as of (UTC, microseconds): the dossiers
	// whose expiry is at or before it are purged, those expiring after it
	// and at or before At + RetentionNotice are announced.
	At time.Time

	// The keyset cursors of the two walks, on (expires_at, id): a row
	// skipped because a transaction held it is left for the next run
	// rather than read again and again.
	noticeAt, purgeAt time.Time
	noticeID, purgeID int64
}

// NewPurgeRun returns a run as of at.
func NewPurgeRun(at time.Time) *PurgeRun {
	at = at.UTC().Truncate(time.Microsecond)
	// The notices' walk starts after the dossiers expiring at At, which
	// this run purges: it is too late to announce them (a dossier that
	// expired before anyone could be told, such as one already past its
	// conservation when this version was installed, goes without notice).
	return &PurgeRun{At: at, noticeAt: at, noticeID: math.MaxInt64}
}

// RetentionNotice returns how long before its expiry a dossier is
// announced to its applicant and listed in the tab expirant.
func (s *Service) RetentionNotice() time.Duration { return s.opts.RetentionNotice }

// NoticeExpiringTx writes, in tx, the expiry notices (expiration_usager) of
// the next batch of dossiers that expire after run.At and within
// RetentionNotice of it, and have not been told yet: it marks them told (expiry_notice_at) and
// writes one delivery to each applicant, and the webhook event
// dossier.expiring of each (whose deliveries it enqueues in tx). Dossiers
// locked by a transaction at that moment are left for the next run. It
// returns the e-mail deliveries' ids, for the caller to enqueue in tx, and
// more = false once the walk is over.
func (s *Service) NoticeExpiringTx(ctx context.Context, tx pgx.Tx, run *PurgeRun, batch int) (deliveries []int64, more bool, err error) {
	// One statement: the candidates come from dossiers_expiry_notice_idx,
	// locked as they are read; the dossier's expires_at is read when the
	// e-mail is sent, so an extension in between shows its new date.
	rows, err := tx.Query(ctx, `
		WITH due AS (
			SELECT id, usager_email, expires_at, procedure_id, state FROM dossiers
			WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND expiry_notice_at IS NULL
				AND expires_at <= $1 AND (expires_at, id) > ($2, $3)
			ORDER BY expires_at, id LIMIT $4
			FOR UPDATE SKIP LOCKED
		), noticed AS (
			UPDATE dossiers d SET expiry_notice_at = $5 FROM due WHERE d.id = due.id
		), sent AS (
			INSERT INTO email_deliveries (dossier_id, kind, recipient, created_at)
			SELECT id, $6, usager_email, $5 FROM due ORDER BY id
			RETURNING id
		)
		SELECT 0, NULL::timestamptz, id, NULL::bigint, NULL::text FROM sent
		UNION ALL
		(SELECT 1, expires_at, id, NULL, NULL FROM due ORDER BY expires_at DESC, id DESC LIMIT 1)
		UNION ALL
		SELECT 2, expires_at, id, procedure_id, state FROM due`,
		run.At.Add(s.opts.RetentionNotice), run.noticeAt, run.noticeID, batch, s.opts.Now(), MailExpirationUsager)
	if err != nil {
		return nil, false, fmt.Errorf("expiry notices: %w", err)
	}
	n := 0
	var last cursorRow
	var events []webhookEvent
	_, err = pgx.ForEachRow(rows, last.dest(), func() error {
		switch last.kind {
		case 0:
			deliveries = append(deliveries, last.id)
			n++
		case 1:
			run.noticeAt, run.noticeID = *last.at, last.id
		default:
			events = append(events, dossierEvent(WebhookDossierExpiring, *last.procedureID, last.id,
				"state", *last.state, "expires_at", *last.at))
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("expiry notices: %w", err)
	}
	if err := s.emitTx(ctx, tx, s.opts.Now(), events...); err != nil {
		return nil, false, err
	}
	return deliveries, n == batch, nil
}

// cursorRow is a row of the purge's statements, which return what they
// wrote (kind 0), the last row of their walk (kind 1), and each dossier
// they changed, for its webhook event (kind 2, with its procedure and
// state).
type cursorRow struct {
	kind        int
	at          *time.Time
	id          int64
	procedureID *int64
	state       *string
}

// dest is what a row of kind, at, id, procedure_id, state scans into.
func (c *cursorRow) dest() []any {
	return []any{&c.kind, &c.at, &c.id, &c.procedureID, &c.state}
}

// PurgeExpiredTx purges, in tx, the next batch of dossiers whose expiry is
// at or before run.At (never one en instruction) and returns how many, with
// more = false once there are none left. Dossiers locked by a transaction
// at that moment are left for the next run.
//
// It erases the personal data of each dossier wherever it lives (the list
// is docs/DATA.md's) and keeps its tombstone:
//
//   - dossiers: demandeur (the whole APT request: names, birth date and
//     place, nationality, residence permit, school, employer, job) becomes
//     {}; usager_email becomes empty; motivation and stale_since become NULL;
//     deleted_at and deletion_reason ('expire') are set. What stays: id,
//     procedure_id, state, decided_at, the dates of the row.
//   - dossier_history: its rows are deleted (motivations, instructeurs).
//   - activities: its rows are deleted (messages, avis and their authors).
//   - follows: its rows are deleted.
//   - email_deliveries: its rows are deleted (recipients, params,
//     last_error with the server's reply); a send_email job still queued
//     for one finds no row and is cancelled.
//   - attestations: pdf and sha256 become NULL; the row keeps its code and
//     dates, so that the verification page can say « supprimée ».
//   - idempotency_keys: the stored responses about the dossier are deleted.
//
// Each purged dossier's webhook event dossier.deleted is written, and its
// deliveries enqueued, in tx: nothing else is. The trigger that keeps a
// decided dossier final lets this transaction through (aptflow.purge), and
// only this one.
func (s *Service) PurgeExpiredTx(ctx context.Context, tx pgx.Tx, run *PurgeRun, batch int) (purged int, more bool, err error) {
	if _, err := tx.Exec(ctx, `SELECT set_config('aptflow.purge', 'on', true)`); err != nil {
		return 0, false, fmt.Errorf("purge: %w", err)
	}
	now := s.opts.Now()
	rows, err := tx.Query(ctx, `
		WITH expired AS (
			SELECT id, expires_at FROM dossiers
			WHERE deleted_at IS NULL AND expires_at IS NOT NULL AND state <> 'en_instruction'
				AND expires_at <= $1 AND (expires_at, id) > ($2, $3)
			ORDER BY expires_at, id LIMIT $4
			FOR UPDATE SKIP LOCKED
		), history AS (
			DELETE FROM dossier_history h USING expired e WHERE h.dossier_id = e.id
		), activities AS (
			DELETE FROM activities a USING expired e WHERE a.dossier_id = e.id
		), follows AS (
			DELETE FROM follows f USING expired e WHERE f.dossier_id = e.id
		), emails AS (
			DELETE FROM email_deliveries m USING expired e WHERE m.dossier_id = e.id
		), responses AS (
			DELETE FROM idempotency_keys k USING expired e WHERE k.dossier_id = e.id
		), pdfs AS (
			UPDATE attestations a SET pdf = NULL, sha256 = NULL FROM expired e WHERE a.dossier_id = e.id
		), tombstones AS (
			UPDATE dossiers d SET demandeur = '{}', usager_email = '', motivation = NULL, stale_since = NULL,
				deleted_at = $5, deletion_reason = $6
			FROM expired e WHERE d.id = e.id
			RETURNING d.id, d.procedure_id, d.state
		)
		SELECT 0, NULL::timestamptz, count(*), NULL::bigint, NULL::text FROM tombstones
		UNION ALL
		(SELECT 1, expires_at, id, NULL, NULL FROM expired ORDER BY expires_at DESC, id DESC LIMIT 1)
		UNION ALL
		SELECT 2, NULL, id, procedure_id, state FROM tombstones`,
		run.At, run.purgeAt, run.purgeID, batch, now, ReasonExpire)
	if err != nil {
		return 0, false, fmt.Errorf("purge: %w", err)
	}
	var last cursorRow
	var events []webhookEvent
	_, err = pgx.ForEachRow(rows, last.dest(), func() error {
		switch last.kind {
		case 0:
			purged = int(last.id)
		case 1:
			run.purgeAt, run.purgeID = *last.at, last.id
		default:
			events = append(events, dossierEvent(WebhookDossierDeleted, *last.procedureID, last.id,
				"state", *last.state, "deleted_at", now, "reason", ReasonExpire))
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("purge: %w", err)
	}
	if err := s.emitTx(ctx, tx, now, events...); err != nil {
		return 0, false, err
	}
	return purged, purged == batch, nil
}

// ForgetIdempotencyKeysTx deletes, in tx, a batch of the idempotency keys
// (with the responses they stored) created before before, and returns how
// many, with more = false once there are none left. Keys of requests still
// running are locked, hence skipped.
func (s *Service) ForgetIdempotencyKeysTx(ctx context.Context, tx pgx.Tx, before time.Time, batch int) (n int, more bool, err error) {
	tag, err := tx.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE (token_id, key) IN (
			SELECT token_id, key FROM idempotency_keys WHERE created_at < $1
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, batch)
	if err != nil {
		return 0, false, fmt.Errorf("forget idempotency keys: %w", err)
	}
	n = int(tag.RowsAffected())
	return n, n == batch, nil
}
