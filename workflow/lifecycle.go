package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Conservation (RGPD): how long a procedure keeps a dossier, in months.
const (
	DefaultConservationMois = 12
	MaxConservationMois     = 120
)

// DefaultRetentionNotice is how long before its expiry the applicant is
// told that a dossier will be deleted, and the dossier shows in the tab
// expirant (RETENTION_NOTICE).
const DefaultRetentionNotice = 720 * time.Hour

// EventProlongerConservation is the event of the history row an extension
// writes (from and to the dossier's state): not a transition.
const EventProlongerConservation = "prolonger_conservation"

// ReasonExpire is the reason of a tombstone left by the purge: the dossier
// reached the end of its conservation.
const ReasonExpire = "expire"

// Tombstone is what remains of a purged dossier: no personal data, enough
// for an upstream app to know that it is gone and why.
type Tombstone struct {
	ID          int64      `json:"id"`
	ProcedureID int64      `json:"procedure_id"`
	State       State      `json:"state"`
	DecidedAt   *time.Time `json:"decided_at"`
	DeletedAt   time.Time  `json:"deleted_at"`
	Reason      string     `json:"reason"`
}

// deletion is how a dossier row says whether it was purged, as the queries
// that read a dossier scan it.
type deletion struct {
	decidedAt *time.Time
	at        *time.Time
	reason    *string
}

// tombstone is the tombstone of the dossier, or nil if it is not purged.
func (g deletion) tombstone(id, procedureID int64, state State) *Tombstone {
	if g.at == nil {
		return nil
	}
	return &Tombstone{ID: id, ProcedureID: procedureID, State: state, DecidedAt: g.decidedAt, DeletedAt: *g.at, Reason: deref(g.reason)}
}

// goneError is the EDossierSupprime error of a purged dossier.
func goneError(t *Tombstone) *Error {
	return &Error{Code: EDossierSupprime, Message: fmt.Sprintf("le dossier %d a été supprimé", t.ID), Tombstone: t}
}

// tombstoneColumns are the columns scanTombstone reads, from alias d.
const tombstoneColumns = `d.id, d.procedure_id, d.state, d.decided_at, d.deleted_at, d.deletion_reason`

func scanTombstone(row pgx.CollectableRow) (Tombstone, error) {
	var t Tombstone
	err := row.Scan(&t.ID, &t.ProcedureID, &t.State, &t.DecidedAt, &t.DeletedAt, &t.Reason)
	return t, err
}

// Tombstone returns the tombstone of a purged dossier, nil (and no error)
// for a dossier that is not purged, or ENotFound for an unknown one. It is
// what a page that shows a dossier's documents (the attestation's
// verification) asks first.
func (s *Service) Tombstone(ctx context.Context, id int64) (*Tombstone, error) {
	var procedureID int64
	var state State
	var gone deletion
	err := s.reader(ctx).QueryRow(ctx, `SELECT procedure_id, state, decided_at, deleted_at, deletion_reason FROM dossiers WHERE id = $1`, id).
		Scan(&procedureID, &state, &gone.decidedAt, &gone.at, &gone.reason)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible(ctx, procedureID)) {
		return nil, Errorf(ENotFound, "dossier %d inconnu", id)
	} else if err != nil {
		return nil, fmt.Errorf("tombstone of dossier %d: %w", id, err)
	}
	return gone.tombstone(id, procedureID, state), nil
}

// DeletedFilter selects a page of a procedure's tombstones, in the order of
// their deletion: those deleted at or after Since, and at Since only those
// whose id is greater than AfterID (the keyset of the previous page).
type DeletedFilter struct {
	Since time.Time
	Page
}

// ListDeleted returns the tombstones of a procedure's purged dossiers, for
// upstream apps to delete their copies: oldest deletion first. ENotFound
// for an unknown procedure.
func (s *Service) ListDeleted(ctx context.Context, procedureID int64, f DeletedFilter) ([]Tombstone, error) {
	var err error
	if f.Limit, err = f.limit(); err != nil {
		return nil, err
	}
	q := s.reader(ctx)
	if _, err := getProcedure(ctx, q, procedureID); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `
		SELECT `+tombstoneColumns+` FROM dossiers d
		WHERE d.procedure_id = $1 AND d.deleted_at IS NOT NULL AND (d.deleted_at, d.id) > ($2, $3)
		ORDER BY d.deleted_at, d.id LIMIT $4`, procedureID, f.Since, f.AfterID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("tombstones of procedure %d: %w", procedureID, err)
	}
	list, err := pgx.CollectRows(rows, scanTombstone)
	if err != nil {
		return nil, fmt.Errorf("tombstones of procedure %d: %w", procedureID, err)
	}
	if list == nil {
		list = []Tombstone{}
	}
	return list, nil
}

// ConservationInput extends a dossier's conservation: an instructeur of
// its procedure adds Mois months to it.
type ConservationInput struct {
	Instructeur string `json:"instructeur"`
	Mois        int    `json:"mois"`
}

// ExtendConservation adds months to a dossier's conservation, which moves
// its expiry (a dossier en instruction, which does not expire, keeps them
// for later). It writes a history row « prolonger_conservation », and the
// applicant is told again before the new expiry.
func (s *Service) ExtendConservation(ctx context.Context, id int64, in ConservationInput) (*Dossier, error) {
	var d *Dossier
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		d, err = s.ExtendConservationTx(ctx, tx, id, in)
		return err
	})
	return d, err
}

// ExtendConservationTx is ExtendConservation in the caller's transaction.
func (s *Service) ExtendConservationTx(ctx context.Context, tx pgx.Tx, id int64, in ConservationInput) (*Dossier, error) {
	v := validator{}
	email, ok := NormalizeEmail(in.Instructeur)
	if !ok {
		v.add("instructeur", "invalid_email", "adresse e-mail invalide")
	}
	if in.Mois < 1 || in.Mois > MaxConservationMois {
		v.add("mois", "out_of_range", fmt.Sprintf("mois doit être entre 1 et %d", MaxConservationMois))
	}
	if err := invalid(v.errs); err != nil {
		return nil, err
	}
	cur, instID, err := lockDossierAs(ctx, tx, id, email)
	if err != nil {
		return nil, err
	}
	if instID == 0 {
		return nil, Errorf(ENotInstructeur, "cet instructeur n'instruit pas la procédure de ce dossier")
	}
	now := s.opts.Now()
	// The trigger dossiers_set_expires_at moves expires_at and, with it,
	// clears expiry_notice_at: the new expiry will be announced in turn.
	if _, err := tx.Exec(ctx, `
		UPDATE dossiers SET conservation_extension_mois = conservation_extension_mois + $2, updated_at = $3
		WHERE id = $1`, id, in.Mois, now); err != nil {
		return nil, fmt.Errorf("extend conservation of dossier %d: %w", id, err)
	}
	if err := historyStmt(id, EventProlongerConservation, cur.state, cur.state, &email, nil, now).exec(ctx, tx); err != nil {
		return nil, fmt.Errorf("history of dossier %d: %w", id, err)
	}
	return getDossier(ctx, tx, id, s.opts.PublicURL)
}
