package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

// SendEmailArgs sends one row of the delivery log.
type SendEmailArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind is the job kind; it never changes once shipped.
func (SendEmailArgs) Kind() string { return "send_email" }

// InsertOpts puts e-mails on their own queue; emailJob, through which
// aptflow inserts them, puts bulk mail on QueueEmailBulk.
func (SendEmailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueEmail}
}

// SendEmailWorker sends the e-mail of a delivery-log row, once.
type SendEmailWorker struct {
	river.WorkerDefaults[SendEmailArgs]
	cfg   Config
	deps  Deps
	pacer *pacer // spaces the e-mails of QueueEmailBulk; nil: no limit
}

// NextRetry backs off exponentially from RetryBase, capped at RetryMax, so
// a short SMTP outage costs minutes, not hours.
func (w *SendEmailWorker) NextRetry(job *river.Job[SendEmailArgs]) time.Time {
	return time.Now().Add(backoff(w.cfg, job.Attempt))
}

// delivery is a delivery-log row as the worker reads it.
type delivery struct {
	ID        int64
	DossierID *int64
	Kind      string
	Recipient string
	Params    deliveryParams
	Status    string
	// Read with the row by loadDelivery: the dossier (nil without one) and,
	// for an acceptance, its attestation (nil if there is none).
	dossier     *dossierInfo
	attestation *attestationFile
}

// deliveryParams are the template inputs a delivery carries beyond its
// dossier: activity ids, an instructeur, dossier ids.
type deliveryParams struct {
	InstructeurID int64   `json:"instructeur_id,omitempty"`
	ActivityIDs   []int64 `json:"activity_ids,omitempty"`
	DossierIDs    []int64 `json:"dossier_ids,omitempty"`
	StaleDays     int     `json:"stale_days,omitempty"`
	// HistoryID is a transition e-mail's history row, whose motivation it
	// shows; loadDelivery reads it in SQL. Deliveries of earlier releases
	// have none.
	HistoryID int64 `json:"history_id,omitempty"`
}

// errUnwanted says that a delivery must not go out any more (the recipient
// stopped following the dossier).
var errUnwanted = errors.New("delivery no longer wanted")

// Work sends the e-mail unless it already went out. Once the delivery row
// says sent, no retry can send it again: a run finds it sent and returns.
// A crash between the SMTP server's acceptance and that update resends it
// with the same Message-ID.
func (w *SendEmailWorker) Work(ctx context.Context, job *river.Job[SendEmailArgs]) error {
	id := job.Args.DeliveryID
	d, err := loadDelivery(ctx, w.deps.Pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("delivery %d does not exist", id))
	} else if err != nil {
		return err
	}
	if d.Status != workflow.DeliveryPending {
		return nil // sent, failed or cancelled by an earlier run
	}
	msg, err := w.compose(ctx, d)
	if errors.Is(err, errUnwanted) {
		return w.deps.Service.CancelDelivery(ctx, id)
	} else if err != nil {
		return fmt.Errorf("compose delivery %d: %w", id, err)
	}

	if job.Queue == QueueEmailBulk {
		if err := w.pacer.wait(ctx); err != nil {
			return err
		}
	}
	sendErr := w.deps.Mailer.Send(ctx, msg)
	if sendErr == nil {
		w.deps.Metrics.emailSent(d.Kind)
		return w.markSent(ctx, job, msg.MessageID)
	}

	// A send cancelled by a shutdown (not timed out by JOB_TIMEOUT) is no
	// verdict on the message: the delivery stays pending, even on the last
	// attempt, and the error wraps the context's so that River makes the job
	// available again at once without spending the attempt.
	interrupted := errors.Is(ctx.Err(), context.Canceled)
	permanent := mailer.IsPermanent(sendErr) && !interrupted
	final := !interrupted && (permanent || job.Attempt >= job.MaxAttempts)
	// The server's reply goes to the delivery log, which the API shows; the
	// error River records and logs names only the delivery and the code.
	record := w.deps.Service.MarkDeliveryAttempt
	if final {
		record = w.deps.Service.MarkDeliveryFailed
		w.deps.Metrics.emailFailed(d.Kind)
	}
	if err := record(context.WithoutCancel(ctx), id, msg.MessageID, sendErr.Error()); err != nil {
		return err
	}
	safe := fmt.Errorf("send delivery %d: %s", id, describe(sendErr))
	if interrupted {
		return fmt.Errorf("%w: %w", safe, ctx.Err())
	}
	if permanent {
		return river.JobCancel(safe)
	}
	return safe
}

// markSent records that the SMTP server accepted the e-mail. The e-mail is
// out: failing to record it would send it again on retry, so a failure here
// (the database restarting, the pool exhausted) is retried for up to
// markSentPatience, even past a shutdown or the job's timeout.
//
// The job is not completed in the same transaction (river.JobCompleteTx):
// the delivery row alone guards against a second send, and River's
// completer completes jobs in batches. One statement instead of four round
// trips and a commit of its own cut the database's CPU per e-mail by a
// third in make bench (docs/PERFORMANCE.md).
func (w *SendEmailWorker) markSent(ctx context.Context, job *river.Job[SendEmailArgs], messageID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markSentPatience)
	defer cancel()
	id := job.Args.DeliveryID
	wait := 50 * time.Millisecond
	for {
		err := w.deps.Service.MarkDeliverySent(ctx, id, messageID)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// markSentPatience bounds how long markSent keeps trying.
const markSentPatience = 30 * time.Second

// describe summarises a send error without the server's text, which may
// quote the address.
func describe(err error) string {
	if errors.Is(err, mailer.ErrInvalidMessage) {
		return "invalid message (permanent)"
	}
	var se *mailer.SendError
	if errors.As(err, &se) {
		kind := "temporary"
		if !se.Temporary {
			kind = "permanent"
		}
		if se.Code != 0 {
			return fmt.Sprintf("smtp %d (%s)", se.Code, kind)
		}
		return "connection error (" + kind + ")"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "send error"
}

// loadDelivery reads a delivery-log row and, in the same query, what its
// e-mail shows of its dossier and, for an acceptance or an expiry notice,
// the attestation (its PDF for an acceptance only): one
// round trip instead of three, each of which costs the database and the
// worker about as much as the work it carries.
func loadDelivery(ctx context.Context, q querier, id int64) (*delivery, error) {
	var (
		d                   delivery
		params, dem         []byte
		di                  dossierInfo
		libelle, serviceNom *string
		code                *string
		pdf                 []byte
		rendered            *bool
	)
	// The motivation is the transition's, from its history row (what to
	// change, for repasser_en_construction); a delivery of an earlier
	// release names none, and shows the decision's.
	err := q.QueryRow(ctx, `
		SELECT e.id, e.dossier_id, e.kind, e.recipient, e.params, e.status,
			p.libelle, p.service_nom, coalesce(p.lien_usager, ''), coalesce(p.lien_instructeur, ''),
			coalesce(p.reply_to, ''),
			d.demandeur, coalesce(h.motivation, d.motivation), d.decided_at, d.state, d.expires_at,
			a.code, CASE WHEN e.kind = $2 THEN a.pdf END, a.pdf IS NOT NULL
		FROM email_deliveries e
		LEFT JOIN dossiers d ON d.id = e.dossier_id
		LEFT JOIN procedures p ON p.id = d.procedure_id
		LEFT JOIN dossier_history h ON h.id = (e.params->>'history_id')::bigint AND h.dossier_id = e.dossier_id
		LEFT JOIN attestations a ON a.dossier_id = e.dossier_id AND e.kind IN ($2, $3)
		WHERE e.id = $1`, id, workflow.MailAccepte, workflow.MailExpirationUsager,
	).Scan(&d.ID, &d.DossierID, &d.Kind, &d.Recipient, &params, &d.Status,
		&libelle, &serviceNom, &di.Liens.Usager, &di.Liens.Instructeur, &di.ReplyTo,
		&dem, &di.Motivation, &di.DecidedAt, &di.State, &di.ExpiresAt,
		&code, &pdf, &rendered)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(params, &d.Params); err != nil {
		return nil, fmt.Errorf("delivery %d params: %w", id, err)
	}
	if d.DossierID != nil && libelle != nil {
		di.ProcedureLibelle, di.ServiceNom = *libelle, *serviceNom
		if err := json.Unmarshal(dem, &di.Demandeur); err != nil {
			return nil, fmt.Errorf("dossier %d demandeur: %w", *d.DossierID, err)
		}
		d.dossier = &di
	}
	if code != nil {
		d.attestation = &attestationFile{code: *code, pdf: pdf, rendered: *rendered}
	}
	return &d, nil
}

// attestationFile is an attestation as the acceptance e-mail attaches it
// (pdf is nil until it is rendered) or the expiry notice links to it
// (pdf is not read, rendered says whether there is one).
type attestationFile struct {
	code     string
	pdf      []byte
	rendered bool
}

// MessageID is the Message-ID of a delivery: the same on every attempt.
func MessageID(deliveryID int64, mailFrom string) string {
	domain := "aptflow.localhost"
	if a, err := mail.ParseAddress(mailFrom); err == nil {
		if at := strings.LastIndexByte(a.Address, '@'); at >= 0 {
			domain = a.Address[at+1:]
		}
	}
	return "aptflow.delivery." + strconv.FormatInt(deliveryID, 10) + "@" + domain
}

// compose builds the message of a delivery from the database as it is now.
func (w *SendEmailWorker) compose(ctx context.Context, d *delivery) (mailer.Message, error) {
	data, attachments, err := emailData(ctx, w.deps.Pool, w.cfg, d)
	if err != nil {
		return mailer.Message{}, err
	}
	rendered, err := w.deps.Templates.Email(d.Kind, data)
	if err != nil {
		return mailer.Message{}, err
	}
	headers := map[string]string{
		"Auto-Submitted":           "auto-generated", // RFC 3834: no vacation replies
		"X-Aptflow-Kind":           d.Kind,
		"X-Auto-Response-Suppress": "All",
	}
	if d.DossierID != nil {
		headers["X-Aptflow-Dossier"] = strconv.FormatInt(*d.DossierID, 10)
	}
	return mailer.Message{
		MessageID:   MessageID(d.ID, w.cfg.MailFrom),
		From:        w.cfg.MailFrom,
		To:          d.Recipient,
		ReplyTo:     data.ReplyTo,
		Subject:     rendered.Subject,
		Text:        rendered.Text,
		HTML:        rendered.HTML,
		Attachments: attachments,
		Date:        time.Now(),
		Headers:     headers,
	}, nil
}

// dossierInfo is what e-mails show of a dossier.
type dossierInfo struct {
	ProcedureLibelle, ServiceNom string
	Liens                        workflow.Liens
	ReplyTo                      string
	Demandeur                    workflow.Demandeur
	Motivation                   *string
	DecidedAt                    *time.Time
	State                        *string
	ExpiresAt                    *time.Time
}

// emailData gathers what the template of a delivery shows.
func emailData(ctx context.Context, q querier, cfg Config, d *delivery) (templates.EmailData, []mailer.Attachment, error) {
	data := templates.EmailData{PublicURL: cfg.PublicURL, StaleDays: d.Params.StaleDays}
	var attachments []mailer.Attachment
	if d.DossierID != nil {
		di := d.dossier // read with the delivery by loadDelivery
		data.DossierID = *d.DossierID
		data.ProcedureLibelle = di.ProcedureLibelle
		data.ServiceNom = di.ServiceNom
		data.Prenom, data.Nom = di.Demandeur.Prenom, di.Demandeur.Nom
		if di.Motivation != nil {
			data.Motivation = *di.Motivation
		}
		if di.DecidedAt != nil {
			data.DecidedAt = *di.DecidedAt
		}
		if di.State != nil {
			data.State = *di.State
		}
		// Each audience its link; replies only from the applicant, to the
		// address the procedure reads.
		if workflow.MailToInstructeur(d.Kind) {
			data.DossierURL = workflow.DossierURL(di.Liens.Instructeur, data.DossierID)
		} else {
			data.DossierURL = workflow.DossierURL(di.Liens.Usager, data.DossierID)
			data.ReplyTo = di.ReplyTo
		}
	}
	if d.Params.InstructeurID != 0 {
		if err := q.QueryRow(ctx, `SELECT nom FROM instructeurs WHERE id = $1`, d.Params.InstructeurID).Scan(&data.RecipientNom); err != nil {
			return data, nil, fmt.Errorf("instructeur %d: %w", d.Params.InstructeurID, err)
		}
	}
	switch d.Kind {
	case workflow.MailAccepte:
		a := d.attestation // read with the delivery by loadDelivery
		if a == nil || a.pdf == nil {
			return data, nil, fmt.Errorf("attestation of dossier %d is not rendered yet", data.DossierID)
		}
		data.VerificationURL = workflow.VerificationURL(cfg.PublicURL, a.code)
		attachments = append(attachments, mailer.Attachment{
			Filename: templates.AttestationFilename(data.DossierID), ContentType: "application/pdf", Data: a.pdf,
		})
	case workflow.MailExpirationUsager:
		// The expiry as it is now: an extension since the notice was
		// written shows its new date. A dossier taken back into instruction
		// since then does not expire any more: the notice is not wanted.
		if d.dossier.ExpiresAt == nil {
			return data, nil, errUnwanted
		}
		data.ExpiresAt = *d.dossier.ExpiresAt
		if a := d.attestation; a != nil && a.rendered {
			data.VerificationURL = workflow.VerificationURL(cfg.PublicURL, a.code)
		}
	case workflow.MailMessageUsager, workflow.MailNotification, workflow.MailDigest:
		acts, err := loadActivities(ctx, q, d.Params.ActivityIDs)
		if err != nil {
			return data, nil, err
		}
		if d.Kind == workflow.MailMessageUsager && len(acts) > 0 {
			data.Message = acts[0].body
		}
		var procs []procedureRef
		data.Activities, data.Dossiers, procs = groupActivities(acts, d.Kind == workflow.MailDigest)
		if d.Kind == workflow.MailDigest {
			signedBy(&data, procs)
		}
		if d.Kind == workflow.MailNotification {
			// Unfollowing stops notifications at once, even queued ones.
			var follows bool
			if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM follows WHERE dossier_id = $1 AND instructeur_id = $2)`,
				data.DossierID, d.Params.InstructeurID).Scan(&follows); err != nil {
				return data, nil, err
			}
			if !follows {
				return data, nil, errUnwanted
			}
		}
	case workflow.MailStaleInstructeur:
		rows, err := q.Query(ctx, `
			SELECT d.id, d.demandeur->>'prenom', d.demandeur->>'nom', d.state, d.last_activity_at,
				p.libelle, p.service_nom, coalesce(p.lien_instructeur, '')
			FROM dossiers d JOIN procedures p ON p.id = d.procedure_id
			WHERE d.id = ANY($1) AND d.deleted_at IS NULL ORDER BY d.id LIMIT $2`, d.Params.DossierIDs, cfg.StaleListMax)
		if err != nil {
			return data, nil, err
		}
		var procs []procedureRef
		data.Dossiers, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (templates.DossierSummary, error) {
			var s templates.DossierSummary
			var p procedureRef
			err := r.Scan(&s.ID, &s.Prenom, &s.Nom, &s.State, &s.LastActivityAt, &p.libelle, &p.service, &p.lienInstructeur)
			s.URL = workflow.DossierURL(p.lienInstructeur, s.ID)
			procs = append(procs, p)
			return s, err
		})
		if err != nil {
			return data, nil, err
		}
		signedBy(&data, procs)
		data.DossiersNotListed = max(0, len(d.Params.DossierIDs)-len(data.Dossiers))
	}
	return data, attachments, nil
}
