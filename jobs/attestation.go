package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/templates/attestation"
	"github.com/aptflow/aptflow/workflow"
)

// AttestationRenderer renders the attestation PDF. The same data must give
// the same bytes.
type AttestationRenderer interface {
	Render(attestation.Data) ([]byte, error)
}

// AttestationSigner signs a rendered attestation (attestation.Signer).
type AttestationSigner interface {
	Sign(pdf []byte, info attestation.SignInfo) ([]byte, error)
}

// RenderAttestationArgs renders the attestation of an accepted dossier and
// then sends the acceptance e-mail of delivery DeliveryID (0: no e-mail, the
// instructeur disabled it).
type RenderAttestationArgs struct {
	DossierID  int64 `json:"dossier_id"`
	DeliveryID int64 `json:"delivery_id,omitempty"`
}

// Kind is the job kind; it never changes once shipped.
func (RenderAttestationArgs) Kind() string { return "render_attestation" }

// InsertOpts puts rendering on its own queue, so a burst of acceptances
// does not starve e-mails of workers.
func (RenderAttestationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueAttestation}
}

// RenderAttestationWorker renders and stores the attestation once.
type RenderAttestationWorker struct {
	river.WorkerDefaults[RenderAttestationArgs]
	cfg  Config
	deps Deps
}

// Work renders and signs the PDF outside any transaction (CPU only), then
// stores it, enqueues the acceptance e-mail and completes the job in one
// transaction. A retry after a crash finds the stored PDF and does not
// render again; a retry after a crash before the store renders the same
// unsigned bytes (a new signature differs only by its signing time), and
// whichever file is stored first is the one kept, mailed and verified.
func (w *RenderAttestationWorker) Work(ctx context.Context, job *river.Job[RenderAttestationArgs]) error {
	id := job.Args.DossierID
	data, stored, err := loadAttestationData(ctx, w.deps.Pool, w.cfg.PublicURL, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("dossier %d has no attestation", id))
	} else if err != nil {
		return err
	}
	var pdf []byte
	signer := w.deps.Signer
	signed := signer != nil
	if !stored {
		data.Signed = signed
		if pdf, err = w.deps.Attestations.Render(*data); err != nil {
			return fmt.Errorf("render attestation of dossier %d: %w", id, err)
		}
		if signer != nil {
			pdf, err = signer.Sign(pdf, attestation.SignInfo{
				Name:     data.ServiceNom,
				Location: data.ServiceNom,
				Reason:   "Autorisation provisoire de travail, dossier nº " + strconv.FormatInt(id, 10),
				Date:     time.Now(),
			})
			if err != nil {
				return fmt.Errorf("sign attestation of dossier %d: %w", id, err)
			}
		}
	}
	return pgx.BeginFunc(ctx, w.deps.Pool, func(tx pgx.Tx) error {
		if pdf != nil {
			// A PDF once stored is never replaced: a run that lost a race
			// with another stores nothing.
			if _, err := w.deps.Service.StoreAttestationTx(ctx, tx, id, pdf, signed); err != nil {
				return err
			}
		}
		if job.Args.DeliveryID != 0 {
			e := emailJob(job.Args.DeliveryID, workflow.MailAccepte, w.cfg)
			client := river.ClientFromContext[pgx.Tx](ctx)
			if _, err := client.InsertTx(ctx, tx, e.Args, e.InsertOpts); err != nil {
				return fmt.Errorf("enqueue acceptance e-mail of dossier %d: %w", id, err)
			}
		}
		_, err := river.JobCompleteTx[*riverpgxv5Driver](ctx, tx, job)
		return err
	})
}

// loadAttestationData reads what the attestation of dossier id shows, and
// whether its PDF is already stored (then data is nil: nothing to render).
// The error wraps pgx.ErrNoRows when the dossier has no attestation, or was
// purged (its data are gone: there is nothing to render any more).
func loadAttestationData(ctx context.Context, q querier, publicURL string, id int64) (data *attestation.Data, stored bool, err error) {
	var (
		dem                []byte
		code               string
		decidedAt          *time.Time
		motivation         *string
		sigNom, sigQualite *string
		d                  attestation.Data
	)
	err = q.QueryRow(ctx, `
		SELECT a.pdf IS NOT NULL, p.libelle, p.service_nom, p.service_adresse, p.signataire_nom, p.signataire_qualite,
			d.demandeur, d.decided_at, d.motivation, a.code
		FROM dossiers d
		JOIN procedures p ON p.id = d.procedure_id
		JOIN attestations a ON a.dossier_id = d.id
		WHERE d.id = $1 AND d.deleted_at IS NULL`, id,
	).Scan(&stored, &d.ProcedureLibelle, &d.ServiceNom, &d.ServiceAdresse, &sigNom, &sigQualite,
		&dem, &decidedAt, &motivation, &code)
	if err != nil {
		return nil, false, fmt.Errorf("attestation data of dossier %d: %w", id, err)
	}
	if stored {
		return nil, true, nil
	}
	if decidedAt == nil {
		return nil, false, fmt.Errorf("dossier %d is not decided", id)
	}
	var dm workflow.Demandeur
	if err := json.Unmarshal(dem, &dm); err != nil {
		return nil, false, fmt.Errorf("dossier %d demandeur: %w", id, err)
	}
	d.DossierID = id
	d.Nom, d.Prenom = dm.Nom, dm.Prenom
	d.DateNaissance = dm.DateNaissance
	d.LieuNaissance = dm.LieuNaissance
	d.Nationalite = dm.Nationalite
	d.TitreSejourNumero = dm.TitreSejour.Numero
	d.TitreSejourExpireLe = dm.TitreSejour.ExpireLe
	d.Etablissement = dm.Etablissement
	d.EmployeurRaisonSociale = dm.Employeur.RaisonSociale
	d.EmployeurSiret = dm.Employeur.Siret
	d.EmployeurAdresse = dm.Employeur.Adresse
	d.Emploi = dm.Emploi
	d.HeuresHebdo = dm.HeuresHebdo
	d.DateDebut, d.DateFin = dm.DateDebut, dm.DateFin
	// Truncated to the second: the PDF's dates must not depend on how
	// precisely the database stored the decision time.
	d.DecidedAt = decidedAt.Truncate(time.Second)
	if motivation != nil {
		d.Motivation = *motivation
	}
	if sigNom != nil && sigQualite != nil {
		d.SignataireNom, d.SignataireQualite = *sigNom, *sigQualite
	}
	d.VerificationCode = code
	d.VerificationURL = workflow.VerificationURL(publicURL, code)
	return &d, false, nil
}
