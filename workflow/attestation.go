package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AttestationPDF returns the rendered attestation of a dossier and its
// sha256, or ENotFound while there is none.
func (s *Service) AttestationPDF(ctx context.Context, dossierID int64) (pdf []byte, sha256 string, err error) {
	var procedureID int64
	err = s.reader(ctx).QueryRow(ctx, `
		SELECT d.procedure_id, a.pdf, a.sha256 FROM attestations a JOIN dossiers d ON d.id = a.dossier_id
		WHERE a.dossier_id = $1 AND a.pdf IS NOT NULL`, dossierID).Scan(&procedureID, &pdf, &sha256)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible(ctx, procedureID)) {
		return nil, "", Errorf(ENotFound, "pas encore d'attestation pour le dossier %d", dossierID)
	} else if err != nil {
		return nil, "", fmt.Errorf("attestation of dossier %d: %w", dossierID, err)
	}
	return pdf, sha256, nil
}

// StoreAttestation stores pdf as the rendered attestation of an accepted
// dossier, with its sha256, unless one is stored already: a PDF once stored
// is never replaced, so the attestation the applicant received stays the
// one the verification page vouches for. stored says whether pdf was
// stored.
func (s *Service) StoreAttestation(ctx context.Context, dossierID int64, pdf []byte) (stored bool, err error) {
	err = s.inStatement(ctx, func(q querier) error {
		stored, err = s.storeAttestation(ctx, q, dossierID, pdf)
		return err
	})
	return stored, err
}

// StoreAttestationTx is StoreAttestation in the caller's transaction: the
// render_attestation job stores the PDF, enqueues the acceptance e-mail and
// completes itself in one transaction.
func (s *Service) StoreAttestationTx(ctx context.Context, tx pgx.Tx, dossierID int64, pdf []byte) (stored bool, err error) {
	return s.storeAttestation(ctx, tx, dossierID, pdf)
}

func (s *Service) storeAttestation(ctx context.Context, q querier, dossierID int64, pdf []byte) (bool, error) {
	if len(pdf) == 0 {
		return false, fmt.Errorf("store attestation of dossier %d: empty PDF", dossierID)
	}
	sum := sha256.Sum256(pdf)
	tag, err := q.Exec(ctx, `
		UPDATE attestations SET pdf = $2, sha256 = $3, rendered_at = $4
		WHERE dossier_id = $1 AND pdf IS NULL`, dossierID, pdf, hex.EncodeToString(sum[:]), s.opts.Now())
	if err != nil {
		return false, fmt.Errorf("store attestation of dossier %d: %w", dossierID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Verification is what the public verification page tells an employer
// holding an attestation.
type Verification struct {
	Valid     bool      `json:"valid"`
	DossierID int64     `json:"dossier_id"`
	Nom       string    `json:"nom"`
	Prenom    string    `json:"prenom"`
	DecidedAt time.Time `json:"decided_at"`
	SHA256    string    `json:"sha256"`
	// Shown to people, not part of the JSON contract.
	Emploi    string `json:"-"`
	Employeur string `json:"-"`
	DateDebut Date   `json:"-"`
	DateFin   Date   `json:"-"`
}

// VerifyAttestation looks up an attestation by its verification code.
// ENotFound for an unknown code, or one whose PDF is not rendered yet. An
// attestation is valid while the dossier is accepted.
func (s *Service) VerifyAttestation(ctx context.Context, code string) (*Verification, error) {
	// Only a code of the right form reaches the database: any bytes may
	// come in a URL, and PostgreSQL refuses a text that is not UTF-8.
	if len(code) != 32 || strings.Trim(code, verificationAlphabet) != "" {
		return nil, Errorf(ENotFound, "code inconnu")
	}
	var v Verification
	var state State
	var dem Demandeur
	var decidedAt *time.Time
	err := s.reader(ctx).QueryRow(ctx, `
		SELECT d.id, d.state, d.demandeur, d.decided_at, a.sha256
		FROM attestations a JOIN dossiers d ON d.id = a.dossier_id
		WHERE a.code = $1 AND a.pdf IS NOT NULL`, code).Scan(&v.DossierID, &state, &dem, &decidedAt, &v.SHA256)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENotFound, "code inconnu")
	} else if err != nil {
		return nil, fmt.Errorf("verify attestation: %w", err)
	}
	v.Valid = state == Accepte
	v.Nom, v.Prenom = dem.Nom, dem.Prenom
	v.Emploi, v.Employeur = dem.Emploi, dem.Employeur.RaisonSociale
	v.DateDebut, v.DateFin = dem.DateDebut, dem.DateFin
	if decidedAt != nil {
		v.DecidedAt = *decidedAt
	}
	return &v, nil
}
