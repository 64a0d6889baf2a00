package workflow

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Procedure is a démarche: the APT procedure of one service (a préfecture).
type Procedure struct {
	ID             int64            `json:"id"`
	Libelle        string           `json:"libelle"`
	Service        ProcedureService `json:"service"`
	StaleAfterDays int              `json:"stale_after_days"`
	HeuresHebdoMax float64          `json:"heures_hebdo_max"`
	// Signataire signs the attestations (nil: the service alone).
	Signataire *Signataire `json:"signataire"`
	// Liens link the e-mails to the dossier in the applicant's and the
	// instructeurs' applications; ReplyTo, if set, is where replies to the
	// applicant's e-mails go (otherwise they are not to be answered).
	Liens   Liens  `json:"liens"`
	ReplyTo string `json:"reply_to,omitempty"`
	// ConservationMois is how long a dossier is kept after its decision,
	// or after its applicant's last activity while en construction.
	ConservationMois int       `json:"conservation_mois"`
	CreatedAt        time.Time `json:"created_at"`
}

// Signataire is who signs a procedure's attestations, as printed under
// them: a name and a capacity (« Pour le préfet et par délégation, la
// cheffe du bureau des étrangers »), never an agent's e-mail.
type Signataire struct {
	Nom     string `json:"nom"`
	Qualite string `json:"qualite"`
}

// ProcedureService is the administration that instructs a procedure.
type ProcedureService struct {
	Nom     string `json:"nom"`
	Adresse string `json:"adresse"`
}

// Notification preferences of an instructeur.
const (
	NotifyInstant = "instant"
	NotifyDaily   = "daily"
	NotifyNone    = "none"
)

// Instructeur is an agent who instructs dossiers of one or more procedures.
type Instructeur struct {
	ID            int64  `json:"id"`
	Email         string `json:"email"`
	Nom           string `json:"nom"`
	Notifications string `json:"notifications"`
}

// DossierSummary is a dossier as lists show it.
type DossierSummary struct {
	ID             int64      `json:"id"`
	ProcedureID    int64      `json:"procedure_id"`
	State          State      `json:"state"`
	UsagerEmail    string     `json:"usager_email"`
	Demandeur      Demandeur  `json:"demandeur"`
	Motivation     *string    `json:"motivation"`
	DecidedAt      *time.Time `json:"decided_at"`
	LastActivityAt time.Time  `json:"last_activity_at"`
	StaleSince     *time.Time `json:"stale_since"`
	// ExpiresAt is when the dossier's conservation ends and the purge
	// erases its personal data; null while en instruction.
	ExpiresAt *time.Time `json:"expires_at"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`

	// tombstone is set when the dossier was purged: what the API then
	// answers instead.
	tombstone *Tombstone
}

// Dossier is one APT request and what happened to it.
type Dossier struct {
	DossierSummary
	History     []HistoryEntry  `json:"history"`
	Followers   []string        `json:"followers"`
	Emails      []Delivery      `json:"emails"`
	Attestation *AttestationRef `json:"attestation"`
}

// HistoryEntry is one row of a dossier's history: a transition, or a flag
// set by the stale scan (event "signaler_inactif").
type HistoryEntry struct {
	Event       string    `json:"event"`
	From        State     `json:"from"`
	To          State     `json:"to"`
	Instructeur *string   `json:"instructeur"`
	Motivation  *string   `json:"motivation"`
	At          time.Time `json:"at"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySent      = "sent"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// Delivery is one e-mail of the delivery log.
type Delivery struct {
	ID        int64      `json:"-"`
	Kind      string     `json:"kind"`
	To        string     `json:"to"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError *string    `json:"last_error"`
	SentAt    *time.Time `json:"sent_at"`
}

// AttestationRef tells where the attestation of an accepted dossier is, once
// rendered.
type AttestationRef struct {
	URL             string `json:"url"`
	SHA256          string `json:"sha256"`
	VerificationURL string `json:"verification_url"`
}

// Task is background work that a change asks for. The Service hands tasks to
// an Enqueuer inside the change's transaction.
type Task interface{ task() }

// SendEmail sends the e-mail of one delivery-log row, of kind Kind (bulk
// or not: IsBulkMail).
type SendEmail struct {
	DeliveryID int64
	Kind       string
}

// RenderAttestation renders the attestation of an accepted dossier, then, if
// DeliveryID is not 0, sends that acceptance e-mail with the PDF attached.
type RenderAttestation struct{ DossierID, DeliveryID int64 }

// NotifyFollower tells one instantly-notified follower about the recent
// activity on a dossier. Tasks for the same pair within the coalescing window
// are one e-mail.
type NotifyFollower struct{ DossierID, InstructeurID int64 }

// DeliverWebhook posts one webhook delivery (one event, one subscription)
// and retries it with backoff until its receiver takes it. Generation is
// the delivery's when the task was made (0, then one more per manual
// retry).
type DeliverWebhook struct {
	DeliveryID int64
	Generation int64
}

func (SendEmail) task()         {}
func (RenderAttestation) task() {}
func (NotifyFollower) task()    {}
func (DeliverWebhook) task()    {}

// Enqueuer inserts tasks as durable jobs in the caller's transaction: if the
// transaction rolls back, the jobs never existed.
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx pgx.Tx, tasks ...Task) error
}
