package workflow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// AttestationPDF returns the rendered attestation of a dossier and its
// sha256, ENotFound while there is none, or EDossierSupprime once the
// dossier is purged (the PDF with it).
func (s *Service) AttestationPDF(ctx context.Context, dossierID int64) (pdf []byte, sha256 string, err error) {
	var procedureID int64
	err = s.reader(ctx).QueryRow(ctx, `
		SELECT d.procedure_id, a.pdf, a.sha256 FROM attestations a JOIN dossiers d ON d.id = a.dossier_id
		WHERE a.dossier_id = $1 AND a.pdf IS NOT NULL`, dossierID).Scan(&procedureID, &pdf, &sha256)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible(ctx, procedureID)) {
		if t, err := s.Tombstone(ctx, dossierID); err == nil && t != nil {
			return nil, "", goneError(t)
		}
		return nil, "", Errorf(ENotFound, "pas encore d'attestation pour le dossier %d", dossierID)
	} else if err != nil {
		return nil, "", fmt.Errorf("attestation of dossier %d: %w", dossierID, err)
	}
	return pdf, sha256, nil
}

// StoreAttestation stores pdf as the rendered attestation of an accepted
// dossier, with its sha256 and whether it is signed, unless one is stored
// already: a PDF once stored is never replaced, so the attestation the
// applicant received stays the one the verification page vouches for. A
// retried job that rendered and signed again (another signing time, other
// bytes) keeps the first file. stored says whether pdf was stored.
func (s *Service) StoreAttestation(ctx context.Context, dossierID int64, pdf []byte, signed bool) (stored bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		stored, err = s.StoreAttestationTx(ctx, tx, dossierID, pdf, signed)
		return err
	})
	return stored, err
}

// StoreAttestationTx is StoreAttestation in the caller's transaction: the
// render_attestation job stores the PDF, enqueues the acceptance e-mail and
// completes itself in one transaction. The PDF stored, it writes the
// webhook event attestation.ready in tx too: once, with the PDF.
func (s *Service) StoreAttestationTx(ctx context.Context, tx pgx.Tx, dossierID int64, pdf []byte, signed bool) (stored bool, err error) {
	if len(pdf) == 0 {
		return false, fmt.Errorf("store attestation of dossier %d: empty PDF", dossierID)
	}
	sum := sha256.Sum256(pdf)
	digest := hex.EncodeToString(sum[:])
	now := s.opts.Now()
	// A purged dossier's attestation has no PDF either, and must get none:
	// the dossier's row is share-locked, so that a purge running at that
	// moment is waited for, and then seen.
	var procedureID int64
	err = tx.QueryRow(ctx, `
		WITH live AS (SELECT id, procedure_id FROM dossiers WHERE id = $1 AND deleted_at IS NULL FOR SHARE)
		UPDATE attestations a SET pdf = $2, sha256 = $3, signed = $4, rendered_at = $5
		FROM live
		WHERE a.dossier_id = live.id AND a.pdf IS NULL
		RETURNING live.procedure_id`, dossierID, pdf, digest, signed, now).Scan(&procedureID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store attestation of dossier %d: %w", dossierID, err)
	}
	return true, s.emitTx(ctx, tx, now, dossierEvent(WebhookAttestationReady, procedureID, dossierID,
		"state", Accepte, "sha256", digest))
}

// Verification statuses of an attestation (see AttestationStatus).
const (
	StatusValide          = "valide"
	StatusPasEncoreValide = "pas_encore_valide"
	StatusExpiree         = "expiree"
	// StatusSupprimee is the status of an attestation whose dossier was
	// purged: nothing else about it is known any more.
	StatusSupprimee = "supprimee"
)

// Verification is what the public verification page tells an employer
// holding an attestation. Once the dossier is purged, only Status, Valid
// and DossierID are known, and serialised.
type Verification struct {
	Status              string                `json:"status"`
	Valid               bool                  `json:"valid"`
	DossierID           int64                 `json:"dossier_id"`
	Nom                 string                `json:"nom"`
	Prenom              string                `json:"prenom"`
	DecidedAt           time.Time             `json:"decided_at"`
	DateDebut           Date                  `json:"date_debut"`
	DateFin             Date                  `json:"date_fin"`
	TitreSejourExpireLe Date                  `json:"titre_sejour_expire_le"`
	Employeur           VerificationEmployeur `json:"employeur"`
	Emploi              string                `json:"emploi"`
	HeuresHebdo         float64               `json:"heures_hebdo"`
	Service             string                `json:"service"`
	Signed              bool                  `json:"signed"`
	SHA256              string                `json:"sha256"`

	// ValidUntil is the last valid day: the earlier of DateFin and
	// TitreSejourExpireLe. The page says it in words; not in the JSON.
	ValidUntil Date `json:"-"`
	// TitreSejourNumero is the residence permit's number masked but for its
	// last four characters, for the page only: the employer compares it
	// with the permit the student shows, nobody reads it whole from here.
	TitreSejourNumero string `json:"-"`
}

// VerificationEmployeur is the employer an attestation names.
type VerificationEmployeur struct {
	RaisonSociale string `json:"raison_sociale"`
	Siret         string `json:"siret"`
}

// MarshalJSON writes a purged attestation's three fields alone: the rest is
// personal data that no longer exists.
func (v Verification) MarshalJSON() ([]byte, error) {
	type plain Verification // no MarshalJSON: no recursion
	if v.Status == StatusSupprimee {
		return json.Marshal(struct {
			Status    string `json:"status"`
			Valid     bool   `json:"valid"`
			DossierID int64  `json:"dossier_id"`
		}{v.Status, v.Valid, v.DossierID})
	}
	return json.Marshal(plain(v))
}

// NormalizeCode turns a verification code as a person may type it from the
// printed attestation (« ABCD-EFGH IJKL… », any case) into the stored form:
// lower case, without spaces or dashes.
func NormalizeCode(code string) string {
	var b strings.Builder
	b.Grow(len(code))
	for _, r := range code {
		switch {
		case r == ' ' || r == '-' || r == '\u00a0' || r == '\u2010' || r == '\u2011' || r == '\u2013':
			// Spaces and dashes as a person, a word processor or a phone
			// keyboard types them.
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ParisToday returns the calendar date in Paris at instant now: the day
// the procedure's calendar reads, whatever the zone of the machine.
func ParisToday(now time.Time) Date { return DateOf(now, Paris()) }

// AttestationStatus is the status of an attestation on the calendar day
// today (in Paris): valide from dateDebut to the earlier of dateFin and
// titreExpire included, pas_encore_valide before, expiree after; supprimee
// once the dossier is purged, whatever the dates.
func AttestationStatus(today, dateDebut, dateFin, titreExpire Date, purged bool) string {
	switch {
	case purged:
		return StatusSupprimee
	case today.Before(dateDebut):
		return StatusPasEncoreValide
	case today.After(lastValidDay(dateFin, titreExpire)):
		return StatusExpiree
	default:
		return StatusValide
	}
}

// lastValidDay is the earlier of the end of the authorisation and the
// expiry of the residence permit (a zero one does not count), as DESIGN.md
// defines it. Demandeur.Validate already refuses a date_fin after the
// permit's expiry; the status does not rely on what wrote the row.
func lastValidDay(dateFin, titreExpire Date) Date {
	if !titreExpire.IsZero() && titreExpire.Before(dateFin) {
		return titreExpire
	}
	return dateFin
}

// maskTitre hides all but the last four characters of a residence permit's
// number.
func maskTitre(numero string) string {
	n := utf8.RuneCountInString(numero)
	if n <= 4 {
		return strings.Repeat("•", n)
	}
	r := []rune(numero)
	return strings.Repeat("•", n-4) + string(r[n-4:])
}

// verificationCodeLen is the length of a stored code (newVerificationCode).
const verificationCodeLen = 32

// storedCode returns code as typed in its stored form (NormalizeCode), and
// whether it can be a code at all: only then is it looked up, since any
// bytes may come in a URL and PostgreSQL refuses a text that is not UTF-8.
func storedCode(code string) (string, bool) {
	code = NormalizeCode(code)
	return code, len(code) == verificationCodeLen && strings.Trim(code, verificationAlphabet) == ""
}

// VerifyAttestation looks up an attestation by its verification code (as
// typed: see NormalizeCode) and tells its status today in Paris. ENotFound
// for an unknown code, or one whose PDF is not rendered yet.
func (s *Service) VerifyAttestation(ctx context.Context, code string) (*Verification, error) {
	code, ok := storedCode(code)
	if !ok {
		return nil, Errorf(ENotFound, "code inconnu")
	}
	var (
		v         Verification
		dem       Demandeur
		decidedAt *time.Time
		digest    *string
		purged    bool
	)
	// A dossier with a rendered attestation is accepted, and a decision is
	// final: its demandeur cannot change any more, but for the purge. A
	// purged attestation has no PDF any more, but it was issued: its code
	// still answers, with its status alone.
	err := s.reader(ctx).QueryRow(ctx, `
		SELECT d.id, d.demandeur, d.decided_at, p.service_nom, a.sha256, a.signed, d.deleted_at IS NOT NULL
		FROM attestations a
		JOIN dossiers d ON d.id = a.dossier_id
		JOIN procedures p ON p.id = d.procedure_id
		WHERE a.code = $1 AND (a.pdf IS NOT NULL OR (d.deleted_at IS NOT NULL AND a.rendered_at IS NOT NULL))`, code,
	).Scan(&v.DossierID, &dem, &decidedAt, &v.Service, &digest, &v.Signed, &purged)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENotFound, "code inconnu")
	} else if err != nil {
		return nil, fmt.Errorf("verify attestation: %w", err)
	}
	v.SHA256 = deref(digest)
	return verification(v, dem, decidedAt, ParisToday(s.opts.Now()), purged), nil
}

// verification completes v (its dossier, service, signature and sha256
// read) with what the demandeur says and the status on the day today. A
// purged attestation keeps its status and dossier alone.
func verification(v Verification, dem Demandeur, decidedAt *time.Time, today Date, purged bool) *Verification {
	v.Status = AttestationStatus(today, dem.DateDebut, dem.DateFin, dem.TitreSejour.ExpireLe, purged)
	if purged {
		return &Verification{Status: v.Status, DossierID: v.DossierID}
	}
	v.Valid = v.Status == StatusValide
	v.Nom, v.Prenom = dem.Nom, dem.Prenom
	if decidedAt != nil {
		v.DecidedAt = *decidedAt
	}
	v.DateDebut, v.DateFin = dem.DateDebut, dem.DateFin
	v.TitreSejourExpireLe = dem.TitreSejour.ExpireLe
	v.ValidUntil = lastValidDay(dem.DateFin, dem.TitreSejour.ExpireLe)
	v.TitreSejourNumero = maskTitre(dem.TitreSejour.Numero)
	v.Employeur = VerificationEmployeur{RaisonSociale: dem.Employeur.RaisonSociale, Siret: dem.Employeur.Siret}
	v.Emploi, v.HeuresHebdo = dem.Emploi, dem.HeuresHebdo
	return &v
}

// CompareAttestation tells whether pdf is, byte for byte, the attestation
// issued under code. ENotFound for an unknown code.
func (s *Service) CompareAttestation(ctx context.Context, code string, pdf []byte) (match bool, err error) {
	code, ok := storedCode(code)
	if !ok {
		return false, Errorf(ENotFound, "code inconnu")
	}
	var stored []byte
	err = s.reader(ctx).QueryRow(ctx, `SELECT pdf FROM attestations WHERE code = $1 AND pdf IS NOT NULL`, code).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, Errorf(ENotFound, "code inconnu")
	} else if err != nil {
		return false, fmt.Errorf("compare attestation: %w", err)
	}
	return bytes.Equal(stored, pdf), nil
}
