package workflow

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what a pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

func getProcedure(ctx context.Context, q querier, id int64) (*Procedure, error) {
	p := &Procedure{ID: id}
	var sigNom, sigQualite *string
	err := q.QueryRow(ctx, `
		SELECT libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max::float8, created_at,
			signataire_nom, signataire_qualite,
			coalesce(lien_usager, ''), coalesce(lien_instructeur, ''), coalesce(reply_to, ''), conservation_mois
		FROM procedures WHERE id = $1`, id,
	).Scan(&p.Libelle, &p.Service.Nom, &p.Service.Adresse, &p.StaleAfterDays, &p.HeuresHebdoMax, &p.CreatedAt,
		&sigNom, &sigQualite, &p.Liens.Usager, &p.Liens.Instructeur, &p.ReplyTo, &p.ConservationMois)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible(ctx, id)) {
		return nil, Errorf(ENotFound, "procédure %d inconnue", id)
	} else if err != nil {
		return nil, fmt.Errorf("get procedure %d: %w", id, err)
	}
	if sigNom != nil && sigQualite != nil {
		p.Signataire = &Signataire{Nom: *sigNom, Qualite: *sigQualite}
	}
	return p, nil
}

// lockedDossier is what a transition needs of the row it locked.
type lockedDossier struct {
	procedureID int64
	state       State
	usagerEmail string
	demandeur   json.RawMessage
}

// lockDossier locks a dossier row until the end of tx: ENotFound for an
// unknown dossier, EDossierSupprime for a purged one, which nothing may
// change any more.
func lockDossier(ctx context.Context, tx pgx.Tx, id int64) (*lockedDossier, error) {
	d, _, err := lockDossierAs(ctx, tx, id, "")
	return d, err
}

// lockDossierAs locks a dossier row until the end of tx, like lockDossier,
// and in the same round trip returns the id of the instructeur with this
// e-mail if they instruct its procedure, else 0.
func lockDossierAs(ctx context.Context, tx pgx.Tx, id int64, email string) (*lockedDossier, int64, error) {
	var d lockedDossier
	var instID int64
	var gone deletion
	err := tx.QueryRow(ctx, `
		SELECT d.procedure_id, d.state, d.usager_email, d.demandeur, d.decided_at, d.deleted_at, d.deletion_reason,
			coalesce((SELECT i.id FROM instructeurs i
			          JOIN procedure_instructeurs pi ON pi.instructeur_id = i.id
			          WHERE i.email = $2 AND pi.procedure_id = d.procedure_id), 0)
		FROM dossiers d WHERE d.id = $1 FOR UPDATE OF d`, id, email,
	).Scan(&d.procedureID, &d.state, &d.usagerEmail, &d.demandeur, &gone.decidedAt, &gone.at, &gone.reason, &instID)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible(ctx, d.procedureID)) {
		return nil, 0, Errorf(ENotFound, "dossier %d inconnu", id)
	} else if err != nil {
		return nil, 0, fmt.Errorf("lock dossier %d: %w", id, err)
	}
	if t := gone.tombstone(id, d.procedureID, d.state); t != nil {
		return nil, 0, goneError(t)
	}
	return &d, instID, nil
}

// instructeurOf returns the id of the instructeur with this e-mail if they
// instruct the procedure, else 0.
func instructeurOf(ctx context.Context, q querier, procedureID int64, email string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `
		SELECT i.id FROM instructeurs i
		JOIN procedure_instructeurs pi ON pi.instructeur_id = i.id
		WHERE i.email = $1 AND pi.procedure_id = $2`, email, procedureID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("instructeur of procedure %d: %w", procedureID, err)
	}
	return id, nil
}

// dossierAndInstructeur checks that the dossier exists (ENotFound), is not
// purged (EDossierSupprime) and that email instructs its procedure
// (ENotInstructeur). It locks the dossier's row until the end of the
// transaction, with the lock the follows' triggers take to count them
// (migrations/00009_scale.sql): a follow or an unfollow waits for a
// transition of its dossier before touching follows, never after, which
// would deadlock with a transition that follows the dossier.
func dossierAndInstructeur(ctx context.Context, q querier, dossierID int64, email string) (procedureID, instID int64, err error) {
	var state State
	var gone deletion
	err = q.QueryRow(ctx, `SELECT procedure_id, state, decided_at, deleted_at, deletion_reason FROM dossiers WHERE id = $1 FOR NO KEY UPDATE`, dossierID).
		Scan(&procedureID, &state, &gone.decidedAt, &gone.at, &gone.reason)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible(ctx, procedureID)) {
		return 0, 0, Errorf(ENotFound, "dossier %d inconnu", dossierID)
	} else if err != nil {
		return 0, 0, fmt.Errorf("get dossier %d: %w", dossierID, err)
	}
	if t := gone.tombstone(dossierID, procedureID, state); t != nil {
		return 0, 0, goneError(t)
	}
	if email, ok := NormalizeEmail(email); ok {
		instID, err = instructeurOf(ctx, q, procedureID, email)
		if err != nil {
			return 0, 0, err
		}
	}
	if instID == 0 {
		return 0, 0, Errorf(ENotInstructeur, "cet instructeur n'instruit pas la procédure de ce dossier")
	}
	return procedureID, instID, nil
}

// stmt is one SQL statement with its arguments, to run at once or to queue
// in a batch: a transition sends its writes and its read-back together, in
// one round trip, each of which costs both processes a system call and a
// wake-up.
type stmt struct {
	sql  string
	args []any
}

func (s stmt) exec(ctx context.Context, q querier) error {
	_, err := q.Exec(ctx, s.sql, s.args...)
	return err
}

// queue queues s on b. The caller sets on the result what reads it
// (QueuedQuery.Exec, QueryRow or Query), if anything does: BatchResults.Close
// runs those readers in the order of the batch, each on its own result.
func (s stmt) queue(b *pgx.Batch) *pgx.QueuedQuery { return b.Queue(s.sql, s.args...) }

func historyStmt(dossierID int64, event string, from, to State, instructeur, motivation *string, at time.Time) stmt {
	if instructeur != nil && *instructeur == "" {
		instructeur = nil
	}
	return stmt{`
		INSERT INTO dossier_history (dossier_id, event, from_state, to_state, instructeur_email, motivation, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, []any{dossierID, event, from, to, instructeur, motivation, at}}
}

// followStmt makes an instructeur follow a dossier. A new follower hears
// only of activity from now on.
func followStmt(dossierID, instID int64) stmt {
	return stmt{`
		INSERT INTO follows (dossier_id, instructeur_id, notified_through)
		VALUES ($1, $2, (SELECT coalesce(max(id), 0) FROM activities WHERE dossier_id = $1))
		ON CONFLICT DO NOTHING`, []any{dossierID, instID}}
}

// follow makes an instructeur follow a dossier.
func follow(ctx context.Context, q querier, dossierID, instID int64) error {
	if err := followStmt(dossierID, instID).exec(ctx, q); err != nil {
		return fmt.Errorf("follow dossier %d: %w", dossierID, err)
	}
	return nil
}

func addDelivery(ctx context.Context, q querier, dossierID int64, kind, recipient string, params any, now time.Time) (int64, error) {
	st, err := deliveryStmt(dossierID, kind, recipient, params, now)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := q.QueryRow(ctx, st.sql, st.args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("delivery log: %w", err)
	}
	return id, nil
}

// deliveryStmt writes a pending e-mail to the delivery log; it returns the
// row's id.
func deliveryStmt(dossierID int64, kind, recipient string, params any, now time.Time) (stmt, error) {
	p := []byte("{}")
	if params != nil {
		var err error
		if p, err = json.Marshal(params); err != nil {
			return stmt{}, err
		}
	}
	var dossier *int64
	if dossierID != 0 {
		dossier = &dossierID
	}
	return stmt{`
		INSERT INTO email_deliveries (dossier_id, kind, recipient, params, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, []any{dossier, kind, recipient, p, now}}, nil
}

// transitionDeliveryStmt writes the pending e-mail of a transition to the
// delivery log, queued after the transition's history row in the same
// batch: under the dossier's row lock, that row is the dossier's latest,
// whose id goes into the params as {"history_id"}, so that the e-mail shows
// the transition's motivation (what to change, for
// repasser_en_construction). It returns the delivery's id.
func transitionDeliveryStmt(dossierID int64, kind, recipient string, now time.Time) stmt {
	return stmt{`
		INSERT INTO email_deliveries (dossier_id, kind, recipient, params, created_at)
		SELECT $1, $2, $3, jsonb_build_object('history_id', max(h.id)), $4
		FROM dossier_history h WHERE h.dossier_id = $1
		RETURNING id`, []any{dossierID, kind, recipient, now}}
}

// newVerificationCode returns 160 random bits in lower-case base32 (32
// characters): unguessable, and easy to read aloud or type from paper.
func newVerificationCode() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("verification code: %w", err)
	}
	return lowerBase32.EncodeToString(b), nil
}

// verificationAlphabet is the alphabet of verification codes.
const verificationAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

var lowerBase32 = base32.NewEncoding(verificationAlphabet).WithPadding(base32.NoPadding)

// dossierColumns are the columns scanDossier reads, from alias d.
const dossierColumns = `d.id, d.procedure_id, d.state, d.usager_email, d.demandeur, d.motivation,
	d.decided_at, d.last_activity_at, d.stale_since, d.expires_at, d.created_at, d.updated_at,
	d.deleted_at, d.deletion_reason`

func scanDossier(row pgx.CollectableRow) (DossierSummary, error) {
	var d DossierSummary
	var dem []byte
	var gone deletion
	err := row.Scan(&d.ID, &d.ProcedureID, &d.State, &d.UsagerEmail, &dem, &d.Motivation,
		&d.DecidedAt, &d.LastActivityAt, &d.StaleSince, &d.ExpiresAt, &d.CreatedAt, &d.UpdatedAt,
		&gone.at, &gone.reason)
	if err != nil {
		return d, err
	}
	gone.decidedAt = d.DecidedAt
	d.tombstone = gone.tombstone(d.ID, d.ProcedureID, d.State)
	if err := json.Unmarshal(dem, &d.Demandeur); err != nil {
		return d, fmt.Errorf("dossier %d: demandeur: %w", d.ID, err)
	}
	return d, nil
}

// getDossier reads a dossier and everything the API shows of it, in one
// round trip.
func getDossier(ctx context.Context, q querier, id int64, publicURL string) (*Dossier, error) {
	b := &pgx.Batch{}
	d := &Dossier{}
	found := false
	// An unknown dossier is not an error of the batch, which would make
	// pgx forget the prepared statements of every query in it.
	b.Queue(`SELECT `+dossierColumns+` FROM dossiers d WHERE d.id = $1`, id).Query(func(rows pgx.Rows) error {
		sum, err := pgx.CollectExactlyOneRow(rows, scanDossier)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		d.DossierSummary, found = sum, err == nil
		return err
	})
	queueDossierLists(b, id, d)
	b.Queue(`SELECT code, sha256 FROM attestations WHERE dossier_id = $1 AND pdf IS NOT NULL`, id).QueryRow(func(row pgx.Row) error {
		var code string
		var digest *string
		err := row.Scan(&code, &digest)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		d.Attestation = &AttestationRef{
			URL:             publicURL + "/v1/dossiers/" + strconv.FormatInt(id, 10) + "/attestation.pdf",
			SHA256:          deref(digest),
			VerificationURL: VerificationURL(publicURL, code),
		}
		return nil
	})
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("get dossier %d: %w", id, err)
	}
	if !found || !visible(ctx, d.ProcedureID) {
		return nil, Errorf(ENotFound, "dossier %d inconnu", id)
	}
	if d.tombstone != nil {
		return nil, goneError(d.tombstone)
	}
	return d, nil
}

// queueDossierLists queues on b the queries of a dossier's history,
// followers and e-mails, each with what reads its result into d.
func queueDossierLists(b *pgx.Batch, id int64, d *Dossier) {
	b.Queue(`SELECT event, from_state, to_state, instructeur_email, motivation, at
		FROM dossier_history WHERE dossier_id = $1 ORDER BY id`, id).Query(func(rows pgx.Rows) (err error) {
		d.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (HistoryEntry, error) {
			var h HistoryEntry
			err := r.Scan(&h.Event, &h.From, &h.To, &h.Instructeur, &h.Motivation, &h.At)
			return h, err
		})
		if err != nil {
			return fmt.Errorf("history of dossier %d: %w", id, err)
		}
		d.History = nonNil(d.History)
		return nil
	})
	b.Queue(`SELECT i.email FROM follows f JOIN instructeurs i ON i.id = f.instructeur_id
		WHERE f.dossier_id = $1 ORDER BY f.created_at, i.email`, id).Query(func(rows pgx.Rows) (err error) {
		if d.Followers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("followers of dossier %d: %w", id, err)
		}
		d.Followers = nonNil(d.Followers)
		return nil
	})
	// A cancelled delivery was never to be sent (its recipient stopped
	// following the dossier before it went out): the API's statuses are
	// pending, sent and failed.
	b.Queue(`SELECT id, kind, recipient, status, attempts, last_error, sent_at
		FROM email_deliveries WHERE dossier_id = $1 AND status <> 'cancelled' ORDER BY id`, id).Query(func(rows pgx.Rows) (err error) {
		d.Emails, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
			var e Delivery
			err := r.Scan(&e.ID, &e.Kind, &e.To, &e.Status, &e.Attempts, &e.LastError, &e.SentAt)
			return e, err
		})
		if err != nil {
			return fmt.Errorf("e-mails of dossier %d: %w", id, err)
		}
		d.Emails = nonNil(d.Emails)
		return nil
	})
}

// nonNil returns s, or an empty slice for nil: the API shows [] for an
// empty list, not null.
func nonNil[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}

// VerificationURL is the public page where anyone holding an attestation
// checks it.
func VerificationURL(publicURL, code string) string {
	return publicURL + "/attestations/" + code
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
