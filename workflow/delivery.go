package workflow

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// The delivery log's writes after a delivery is created: what the send_email
// job learns of its e-mail. Each is one statement (a failure, with its
// webhook event, one transaction), on the pool or, under WithTx or in its
// Tx form, in the caller's transaction.

// MaxLastErrorLen bounds the server reply a delivery keeps in last_error,
// in characters.
const MaxLastErrorLen = 1000

// MarkDeliverySent records that the SMTP server accepted the e-mail of
// delivery id, sent with messageID: no retry sends it again.
func (s *Service) MarkDeliverySent(ctx context.Context, id int64, messageID string) error {
	return s.inStatement(ctx, func(q querier) error { return s.markDeliverySent(ctx, q, id, messageID) })
}

// MarkDeliverySentTx is MarkDeliverySent in the caller's transaction.
func (s *Service) MarkDeliverySentTx(ctx context.Context, tx pgx.Tx, id int64, messageID string) error {
	return s.markDeliverySent(ctx, tx, id, messageID)
}

func (s *Service) markDeliverySent(ctx context.Context, q querier, id int64, messageID string) error {
	if _, err := q.Exec(ctx, `
		UPDATE email_deliveries SET status = 'sent', attempts = attempts + 1, sent_at = $3,
			message_id = $2, last_error = NULL
		WHERE id = $1`, id, messageID, s.opts.Now()); err != nil {
		return fmt.Errorf("mark delivery %d sent: %w", id, err)
	}
	return nil
}

// MarkDeliveryAttempt records an attempt at delivery id that failed for
// reason (the server's reply, shown by the API) and will be retried: the
// delivery stays pending.
func (s *Service) MarkDeliveryAttempt(ctx context.Context, id int64, messageID, reason string) error {
	return s.inStatement(ctx, func(q querier) error {
		return recordFailure(ctx, q, id, messageID, reason, DeliveryPending)
	})
}

// MarkDeliveryAttemptTx is MarkDeliveryAttempt in the caller's transaction.
func (s *Service) MarkDeliveryAttemptTx(ctx context.Context, tx pgx.Tx, id int64, messageID, reason string) error {
	return recordFailure(ctx, tx, id, messageID, reason, DeliveryPending)
}

// MarkDeliveryFailed records the last attempt at delivery id, failed for
// reason: the server refused the e-mail for good, or every attempt is
// spent. The delivery is failed; nothing retries it. An e-mail about a
// dossier writes the webhook event email.failed (its kind, never its
// recipient) in the same transaction: the upstream app learns that the
// applicant, or an instructeur, will not read it.
func (s *Service) MarkDeliveryFailed(ctx context.Context, id int64, messageID, reason string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return s.MarkDeliveryFailedTx(ctx, tx, id, messageID, reason) })
}

// MarkDeliveryFailedTx is MarkDeliveryFailed in the caller's transaction.
func (s *Service) MarkDeliveryFailedTx(ctx context.Context, tx pgx.Tx, id int64, messageID, reason string) error {
	if err := recordFailure(ctx, tx, id, messageID, reason, DeliveryFailed); err != nil {
		return err
	}
	var dossierID, procedureID *int64
	var kind string
	if err := tx.QueryRow(ctx, `
		SELECT e.dossier_id, d.procedure_id, e.kind FROM email_deliveries e
		LEFT JOIN dossiers d ON d.id = e.dossier_id WHERE e.id = $1`, id).Scan(&dossierID, &procedureID, &kind); err != nil {
		return fmt.Errorf("delivery %d: %w", id, err)
	}
	if dossierID == nil || procedureID == nil {
		return nil // a digest or a stale list: no dossier, no procedure to tell
	}
	return s.emitTx(ctx, tx, s.opts.Now(), dossierEvent(WebhookEmailFailed, *procedureID, *dossierID,
		"email_id", id, "kind", kind))
}

func recordFailure(ctx context.Context, q querier, id int64, messageID, reason, status string) error {
	if _, err := q.Exec(ctx, `
		UPDATE email_deliveries SET attempts = attempts + 1, last_error = $2, status = $3, message_id = $4
		WHERE id = $1`, id, clip(reason, MaxLastErrorLen), status, messageID); err != nil {
		return fmt.Errorf("record attempt of delivery %d: %w", id, err)
	}
	return nil
}

// CancelDelivery cancels delivery id while it is pending: its e-mail is no
// longer wanted (its recipient stopped following the dossier). The API does
// not list a cancelled delivery.
func (s *Service) CancelDelivery(ctx context.Context, id int64) error {
	return s.inStatement(ctx, func(q querier) error { return cancelDelivery(ctx, q, id) })
}

// CancelDeliveryTx is CancelDelivery in the caller's transaction.
func (s *Service) CancelDeliveryTx(ctx context.Context, tx pgx.Tx, id int64) error {
	return cancelDelivery(ctx, tx, id)
}

func cancelDelivery(ctx context.Context, q querier, id int64) error {
	if _, err := q.Exec(ctx, `UPDATE email_deliveries SET status = 'cancelled' WHERE id = $1 AND status = 'pending'`, id); err != nil {
		return fmt.Errorf("cancel delivery %d: %w", id, err)
	}
	return nil
}

// clip makes s fit a text column of at most n characters. It cuts between
// characters, never inside one, and replaces invalid UTF-8 and NUL, which
// PostgreSQL refuses in text: an SMTP server's reply may hold either, and
// a delivery that could not record its failure would be retried forever.
func clip(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	i := 0
	for range n {
		if i == len(s) {
			return s
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}
