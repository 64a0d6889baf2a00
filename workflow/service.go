package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configures a Service.
type Options struct {
	// PublicURL is the base of the links aptflow gives out (attestation,
	// verification page), without a trailing slash.
	PublicURL string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnTransition, if set, is called after each committed Transition (for
	// metrics); under WithTx, once the caller's transaction has committed.
	// TransitionTx does not call it: only its caller knows whether tx
	// commits. It must not block.
	OnTransition func(event Event)
	// WebhookSecrets seals the webhooks' secrets and WebhookTargets checks
	// their URLs; without both, no webhook can be created
	// (EWebhooksNotConfigured).
	WebhookSecrets SecretBox
	WebhookTargets TargetChecker
	// SecretRotationGrace is how long a webhook's previous secret still
	// signs after a rotation; DefaultSecretRotationGrace when 0.
	SecretRotationGrace time.Duration
	// RetentionNotice is how long before its expiry a dossier is announced
	// to its applicant and listed in the tab expirant;
	// DefaultRetentionNotice when 0.
	RetentionNotice time.Duration
}

// Service runs the procedure's rules. Each method that writes exists twice:
// M, and MTx, which runs in the caller's transaction tx so that an upstream
// Go app can change a dossier and its own tables atomically. M opens a
// transaction of its own, or, under WithTx, runs in a savepoint of the
// caller's. In all three, the change and the jobs it causes commit together
// or not at all. The methods that only read (GetProcedure, GetDossier,
// ListForInstructeur, AttestationPDF, VerifyAttestation) read through the
// caller's transaction under WithTx, so they see what it wrote.
type Service struct {
	pool *pgxpool.Pool
	enq  Enqueuer
	opts Options
}

// NewService returns a Service on pool that enqueues its background work
// with enq.
func NewService(pool *pgxpool.Pool, enq Enqueuer, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SecretRotationGrace == 0 {
		opts.SecretRotationGrace = DefaultSecretRotationGrace
	}
	if opts.RetentionNotice == 0 {
		opts.RetentionNotice = DefaultRetentionNotice
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	return &Service{pool: pool, enq: enq, opts: opts}
}

// Pool returns the service's connection pool.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

// PublicURL returns the base URL of public links.
func (s *Service) PublicURL() string { return s.opts.PublicURL }

// inTx runs fn in a new transaction, committed if fn returns nil; or, when
// ctx carries a transaction (WithTx), in a savepoint of it, released if fn
// returns nil and rolled back otherwise.
func (s *Service) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if o, ok := ctx.Value(txKey{}).(*outerTx); ok {
		return pgx.BeginFunc(ctx, o.tx, fn)
	}
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// inStatement runs fn, which writes with one statement, on the pool: a
// statement is atomic by itself, and a transaction around it would cost
// two more round trips. Under WithTx, it runs in a savepoint of the
// caller's transaction, like inTx.
func (s *Service) inStatement(ctx context.Context, fn func(querier) error) error {
	if o, ok := ctx.Value(txKey{}).(*outerTx); ok {
		return pgx.BeginFunc(ctx, o.tx, func(tx pgx.Tx) error { return fn(tx) })
	}
	return fn(s.pool)
}

// reader returns what a read runs on: the caller's transaction under
// WithTx, so that the read sees what it wrote; else the pool.
func (s *Service) reader(ctx context.Context) querier {
	if o, ok := ctx.Value(txKey{}).(*outerTx); ok {
		return o.tx
	}
	return s.pool
}

// afterCommit runs fn once what inTx wrote under ctx has committed: now,
// or, under WithTx, when the caller says its transaction committed.
func afterCommit(ctx context.Context, fn func()) {
	if o, ok := ctx.Value(txKey{}).(*outerTx); ok {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.after = append(o.after, fn)
		return
	}
	fn()
}

type txKey struct{}

// outerTx is the caller's transaction WithTx puts in a context, with what
// to do once it has committed.
type outerTx struct {
	tx    pgx.Tx
	mu    sync.Mutex
	after []func()
}

// WithTx returns a context under which the Service's methods that write run
// inside tx (each in a savepoint) instead of a transaction of their own:
// what they change commits or rolls back with tx. The caller calls
// committed once tx has committed (not if it rolled back), which runs what
// the methods do after a commit (OnTransition). The API runs a request with
// an Idempotency-Key this way, in one transaction with the key and the
// response it stores for replays.
func WithTx(ctx context.Context, tx pgx.Tx) (txCtx context.Context, committed func()) {
	o := &outerTx{tx: tx}
	return context.WithValue(ctx, txKey{}, o), func() {
		o.mu.Lock()
		after := o.after
		o.after = nil
		o.mu.Unlock()
		for _, fn := range after {
			fn()
		}
	}
}

// ProcedureInput is what creates a procedure.
type ProcedureInput struct {
	Libelle        string           `json:"libelle"`
	Service        ProcedureService `json:"service"`
	StaleAfterDays int              `json:"stale_after_days"`
	HeuresHebdoMax float64          `json:"heures_hebdo_max"`
	Signataire     *Signataire      `json:"signataire"`
	Liens          Liens            `json:"liens"`
	ReplyTo        string           `json:"reply_to"`
	// ConservationMois is DefaultConservationMois when absent (nil).
	ConservationMois *int `json:"conservation_mois"`
}

// conservation is the procedure's conservation, in months.
func (in *ProcedureInput) conservation() int {
	if in.ConservationMois == nil {
		return DefaultConservationMois
	}
	return *in.ConservationMois
}

// Validate checks a procedure input, one FieldError per bad field.
func (in *ProcedureInput) Validate() error {
	v := validator{}
	v.text("libelle", in.Libelle, maxTextLen)
	v.text("service.nom", in.Service.Nom, maxTextLen)
	v.lines("service.adresse", in.Service.Adresse, maxAddressLen)
	if in.StaleAfterDays < 1 || in.StaleAfterDays > 3650 {
		v.add("stale_after_days", "out_of_range", "stale_after_days doit être entre 1 et 3650")
	}
	if !(in.HeuresHebdoMax > 0 && in.HeuresHebdoMax <= 48) {
		v.add("heures_hebdo_max", "out_of_range", "heures_hebdo_max doit être entre 0 (exclu) et 48")
	}
	if in.Signataire != nil {
		v.name("signataire.nom", in.Signataire.Nom)
		v.text("signataire.qualite", in.Signataire.Qualite, maxTextLen)
	}
	in.Liens.validate(&v)
	if in.ReplyTo != "" {
		if email, ok := NormalizeEmail(in.ReplyTo); ok {
			in.ReplyTo = email
		} else {
			v.add("reply_to", "invalid_email", "adresse e-mail invalide")
		}
	}
	if c := in.conservation(); c < 1 || c > MaxConservationMois {
		v.add("conservation_mois", "out_of_range", fmt.Sprintf("conservation_mois doit être entre 1 et %d", MaxConservationMois))
	}
	return invalid(v.errs)
}

// CreateProcedure creates a procedure.
func (s *Service) CreateProcedure(ctx context.Context, in ProcedureInput) (p *Procedure, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		p, err = s.CreateProcedureTx(ctx, tx, in)
		return err
	})
	return p, err
}

// CreateProcedureTx is CreateProcedure in the caller's transaction.
func (s *Service) CreateProcedureTx(ctx context.Context, tx pgx.Tx, in ProcedureInput) (*Procedure, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	p := &Procedure{Libelle: in.Libelle, Service: in.Service, StaleAfterDays: in.StaleAfterDays, HeuresHebdoMax: in.HeuresHebdoMax,
		Signataire: in.Signataire, Liens: in.Liens, ReplyTo: in.ReplyTo, ConservationMois: in.conservation()}
	var sigNom, sigQualite *string
	if in.Signataire != nil {
		sigNom, sigQualite = &in.Signataire.Nom, &in.Signataire.Qualite
	}
	if err := tx.QueryRow(ctx, `
		INSERT INTO procedures (libelle, service_nom, service_adresse, stale_after_days, heures_hebdo_max,
			signataire_nom, signataire_qualite, lien_usager, lien_instructeur, reply_to, conservation_mois)
		VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8, ''), nullif($9, ''), nullif($10, ''), $11) RETURNING id, created_at`,
		in.Libelle, in.Service.Nom, in.Service.Adresse, in.StaleAfterDays, in.HeuresHebdoMax, sigNom, sigQualite,
		in.Liens.Usager, in.Liens.Instructeur, in.ReplyTo, p.ConservationMois,
	).Scan(&p.ID, &p.CreatedAt); err != nil {
		return nil, fmt.Errorf("create procedure: %w", err)
	}
	return p, nil
}

// GetProcedure returns a procedure, or ENotFound.
func (s *Service) GetProcedure(ctx context.Context, id int64) (*Procedure, error) {
	return getProcedure(ctx, s.reader(ctx), id)
}

// AddInstructeur puts the instructeur with this e-mail on a procedure,
// creating the instructeur, named nom, if needed; an existing instructeur
// keeps their name. added is false if it was already there.
func (s *Service) AddInstructeur(ctx context.Context, procedureID int64, email, nom string) (inst *Instructeur, added bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		inst, added, err = s.AddInstructeurTx(ctx, tx, procedureID, email, nom)
		return err
	})
	return inst, added, err
}

// AddInstructeurTx is AddInstructeur in the caller's transaction.
func (s *Service) AddInstructeurTx(ctx context.Context, tx pgx.Tx, procedureID int64, email, nom string) (inst *Instructeur, added bool, err error) {
	v := validator{}
	email, ok := NormalizeEmail(email)
	if !ok {
		v.add("email", "invalid_email", "adresse e-mail invalide")
	}
	v.name("nom", nom)
	if err := invalid(v.errs); err != nil {
		return nil, false, err
	}
	if _, err := getProcedure(ctx, tx, procedureID); err != nil {
		return nil, false, err
	}
	inst = &Instructeur{Email: email}
	// An instructeur who exists keeps their name, as documented: a token
	// of one procedure must not rename the agent of another. (The no-op
	// update makes RETURNING give the existing row.)
	if err := tx.QueryRow(ctx, `
		INSERT INTO instructeurs (email, nom) VALUES ($1, $2)
		ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email
		RETURNING id, nom, notifications`, email, nom,
	).Scan(&inst.ID, &inst.Nom, &inst.Notifications); err != nil {
		return nil, false, fmt.Errorf("upsert instructeur: %w", err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO procedure_instructeurs (procedure_id, instructeur_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, procedureID, inst.ID)
	if err != nil {
		return nil, false, fmt.Errorf("add instructeur to procedure %d: %w", procedureID, err)
	}
	return inst, tag.RowsAffected() == 1, nil
}

// DossierInput is what creates a dossier.
type DossierInput struct {
	ProcedureID int64           `json:"procedure_id"`
	UsagerEmail string          `json:"usager_email"`
	Demandeur   json.RawMessage `json:"demandeur"`
}

// CreateDossier creates a dossier en construction.
func (s *Service) CreateDossier(ctx context.Context, in DossierInput) (*Dossier, error) {
	var d *Dossier
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		d, err = s.CreateDossierTx(ctx, tx, in)
		return err
	})
	return d, err
}

// CreateDossierTx is CreateDossier in the caller's transaction.
func (s *Service) CreateDossierTx(ctx context.Context, tx pgx.Tx, in DossierInput) (*Dossier, error) {
	var fields []FieldError
	email, ok := NormalizeEmail(in.UsagerEmail)
	if !ok {
		fields = append(fields, FieldError{Field: "usager_email", Code: "invalid_email", Detail: "adresse e-mail invalide"})
	}
	var proc *Procedure
	if in.ProcedureID <= 0 {
		fields = append(fields, FieldError{Field: "procedure_id", Code: "required", Detail: "procedure_id est obligatoire"})
	} else {
		var err error
		proc, err = getProcedure(ctx, tx, in.ProcedureID)
		if ErrorCode(err) == ENotFound {
			fields = append(fields, FieldError{Field: "procedure_id", Code: "not_found", Detail: "procédure inconnue"})
		} else if err != nil {
			return nil, err
		}
	}
	dem, err := DecodeDemandeur(in.Demandeur)
	var derr *Error
	switch {
	case errors.As(err, &derr):
		fields = append(fields, derr.Fields...)
	case err != nil:
		return nil, err
	case proc != nil:
		if err := dem.Validate(proc.HeuresHebdoMax, s.opts.Now()); errors.As(err, &derr) {
			fields = append(fields, derr.Fields...)
		}
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	demJSON, err := json.Marshal(dem)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var id int64
	if err := tx.QueryRow(ctx, `
		INSERT INTO dossiers (procedure_id, usager_email, demandeur, last_activity_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4, $4) RETURNING id`,
		in.ProcedureID, email, demJSON, now,
	).Scan(&id); err != nil {
		return nil, fmt.Errorf("create dossier: %w", err)
	}
	if err := s.emitTx(ctx, tx, now, dossierEvent(WebhookDossierCreated, in.ProcedureID, id, "state", EnConstruction)); err != nil {
		return nil, err
	}
	return getDossier(ctx, tx, id, s.opts.PublicURL)
}

// GetDossier returns a dossier with its history, followers, e-mails and
// attestation, or ENotFound.
func (s *Service) GetDossier(ctx context.Context, id int64) (*Dossier, error) {
	return getDossier(ctx, s.reader(ctx), id, s.opts.PublicURL)
}

// Transition applies an instructeur's event to a dossier.
func (s *Service) Transition(ctx context.Context, id int64, cmd Command) (*Dossier, error) {
	var d *Dossier
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		d, err = s.TransitionTx(ctx, tx, id, cmd)
		return err
	})
	if err == nil && s.opts.OnTransition != nil {
		afterCommit(ctx, func() { s.opts.OnTransition(cmd.Event) })
	}
	return d, err
}

// TransitionTx is Transition in the caller's transaction: it locks the
// dossier row, applies the state machine, writes the history row and the
// delivery log, and enqueues the jobs, all in tx. Of two instructeurs acting
// at once, the second waits for the first's lock and then sees the new state.
func (s *Service) TransitionTx(ctx context.Context, tx pgx.Tx, id int64, cmd Command) (*Dossier, error) {
	email, ok := NormalizeEmail(cmd.Instructeur) // "" if not an address: no instructeur has it
	if ok {
		cmd.Instructeur = email
	}
	cur, instID, err := lockDossierAs(ctx, tx, id, email)
	if err != nil {
		return nil, err
	}
	cmd.ActorIsInstructeur = instID != 0
	out, err := Apply(cur.state, cmd)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var motivation *string
	if out.Motivation != "" {
		motivation = &out.Motivation
	}

	// The writes and the read-back go in one batch: one round trip instead
	// of one per statement. Each statement is queued with what reads its
	// result, if anything does, so the reading cannot drift from the
	// writing: Close runs the readers in the order of the batch.
	b := &pgx.Batch{}
	d := &Dossier{}
	var deliveryID int64
	// Any transition clears the stale flag; a decision records its motivation
	// and date. A dossier given back to the applicant starts its stale clock
	// again: they could not act on it while it was in instruction.
	// The UPDATE returns the row as the API shows it: the other writes do
	// not touch it.
	b.Queue(`
		UPDATE dossiers d SET state = $2, updated_at = $3, stale_since = NULL,
			last_activity_at = CASE WHEN $2 = 'en_construction' THEN $3 ELSE last_activity_at END,
			motivation = CASE WHEN $4 THEN $5 ELSE motivation END,
			decided_at = CASE WHEN $4 THEN $3 ELSE decided_at END
		WHERE id = $1
		RETURNING `+dossierColumns, id, out.To, now, out.Decision, motivation,
	).Query(func(rows pgx.Rows) (err error) {
		d.DossierSummary, err = pgx.CollectExactlyOneRow(rows, scanDossier)
		return err
	})
	historyStmt(id, string(cmd.Event), out.From, out.To, &email, motivation, now).queue(b)
	if out.Follow {
		followStmt(id, instID).queue(b)
	}
	if out.Mail != "" {
		transitionDeliveryStmt(id, out.Mail, cur.usagerEmail, now).queue(b).
			QueryRow(func(row pgx.Row) error { return row.Scan(&deliveryID) })
	}
	if out.Attestation {
		code, err := newVerificationCode()
		if err != nil {
			return nil, err
		}
		b.Queue(`INSERT INTO attestations (dossier_id, code, created_at) VALUES ($1, $2, $3)`, id, code, now)
	}
	// The webhook event, for the subscriptions that want it.
	emit, err := emitStmt(now, dossierEvent(WebhookDossierStateChanged, cur.procedureID, id,
		"state", out.To, "previous_state", out.From, "event", cmd.Event))
	if err != nil {
		return nil, err
	}
	var webhooks []int64
	emit.queue(b).Query(func(rows pgx.Rows) (err error) {
		webhooks, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	// No attestation query: a dossier in transition has no rendered one (an
	// accepted dossier never moves again; its PDF is rendered after commit).
	queueDossierLists(b, id, d)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("transition dossier %d: %w", id, err)
	}

	var tasks []Task
	switch {
	case out.Attestation:
		tasks = append(tasks, RenderAttestation{DossierID: id, DeliveryID: deliveryID})
	case out.Mail != "":
		tasks = append(tasks, SendEmail{DeliveryID: deliveryID, Kind: out.Mail})
	}
	// One enqueue for the e-mail's job and the webhooks': one round trip.
	tasks = append(tasks, webhookTasks(webhooks)...)
	if len(tasks) > 0 {
		if err := s.enq.EnqueueTx(ctx, tx, tasks...); err != nil {
			return nil, fmt.Errorf("enqueue jobs of dossier %d: %w", id, err)
		}
	}
	return d, nil
}

// UpdateDemandeur applies a partial demandeur (JSON merge patch) from the
// applicant. Only a dossier en construction may change (ENotEditable).
func (s *Service) UpdateDemandeur(ctx context.Context, id int64, patch json.RawMessage) (*Dossier, error) {
	var d *Dossier
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		d, err = s.UpdateDemandeurTx(ctx, tx, id, patch)
		return err
	})
	return d, err
}

// UpdateDemandeurTx is UpdateDemandeur in the caller's transaction. The
// modification is an activity: it clears the stale flag and notifies the
// followers.
func (s *Service) UpdateDemandeurTx(ctx context.Context, tx pgx.Tx, id int64, patch json.RawMessage) (*Dossier, error) {
	cur, err := lockDossier(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if cur.state != EnConstruction {
		return nil, Errorf(ENotEditable, "le dossier est %s : l'usager ne peut plus le modifier", cur.state)
	}
	if p := strings.TrimSpace(string(patch)); p == "" || p[0] != '{' {
		return nil, invalid([]FieldError{{Field: "demandeur", Code: "invalid_type", Detail: "objet attendu"}})
	}
	merged, err := MergePatch(cur.demandeur, patch)
	if err != nil {
		return nil, invalid([]FieldError{{Field: "demandeur", Code: "invalid_type", Detail: "objet attendu"}})
	}
	dem, err := DecodeDemandeur(merged)
	if err != nil {
		return nil, err
	}
	proc, err := getProcedure(ctx, tx, cur.procedureID)
	if err != nil {
		return nil, err
	}
	if err := dem.Validate(proc.HeuresHebdoMax, s.opts.Now()); err != nil {
		return nil, err
	}
	demJSON, err := json.Marshal(dem)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	if _, err := tx.Exec(ctx, `
		UPDATE dossiers SET demandeur = $2, updated_at = $3, last_activity_at = $3, stale_since = NULL
		WHERE id = $1`, id, demJSON, now); err != nil {
		return nil, fmt.Errorf("update dossier %d: %w", id, err)
	}
	if _, err := s.recordActivity(ctx, tx, id, ActivityModification, "usager", 0, "", now); err != nil {
		return nil, err
	}
	if err := s.emitTx(ctx, tx, now, dossierEvent(WebhookDossierModified, cur.procedureID, id, "state", cur.state)); err != nil {
		return nil, err
	}
	return getDossier(ctx, tx, id, s.opts.PublicURL)
}

// Follow makes an instructeur of the dossier's procedure follow it. Following
// twice is not an error.
func (s *Service) Follow(ctx context.Context, dossierID int64, email string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return s.FollowTx(ctx, tx, dossierID, email) })
}

// FollowTx is Follow in the caller's transaction.
func (s *Service) FollowTx(ctx context.Context, tx pgx.Tx, dossierID int64, email string) error {
	_, instID, err := dossierAndInstructeur(ctx, tx, dossierID, email)
	if err != nil {
		return err
	}
	return follow(ctx, tx, dossierID, instID)
}

// Unfollow stops an instructeur following a dossier; notifications already
// queued for them are dropped at send time.
func (s *Service) Unfollow(ctx context.Context, dossierID int64, email string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return s.UnfollowTx(ctx, tx, dossierID, email) })
}

// UnfollowTx is Unfollow in the caller's transaction.
func (s *Service) UnfollowTx(ctx context.Context, tx pgx.Tx, dossierID int64, email string) error {
	_, instID, err := dossierAndInstructeur(ctx, tx, dossierID, email)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM follows WHERE dossier_id = $1 AND instructeur_id = $2`, dossierID, instID); err != nil {
		return fmt.Errorf("unfollow dossier %d: %w", dossierID, err)
	}
	return nil
}

// instructeurVisible is the condition, on instructeurs i, that the
// instructeur is on one of the procedures of the query parameter $2 (NULL:
// every procedure): an instructeur of no procedure the caller sees does not
// exist for it.
const instructeurVisible = `($2::bigint[] IS NULL OR EXISTS (
	SELECT 1 FROM procedure_instructeurs pi WHERE pi.instructeur_id = i.id AND pi.procedure_id = ANY($2)))`

// Tabs of an instructeur's dossier list.
const (
	TabASuivre  = "a_suivre"
	TabSuivis   = "suivis"
	TabTraites  = "traites"
	TabExpirant = "expirant"
	TabTous     = "tous"
)

// The size of one page of a dossier list: DefaultListLimit unless the
// caller asks for another, at most MaxListLimit.
const (
	DefaultListLimit = 100
	MaxListLimit     = 500
)

// Page is one page of a list paginated by keyset.
type Page struct {
	AfterID int64 // the items with a greater id (at the same key, for lists of another order)
	Limit   int   // 1..MaxListLimit; 0 means DefaultListLimit
}

// PageSize is the number of items a full page of p holds: a caller that
// gets that many may ask for the next page.
func (p Page) PageSize() int {
	if p.Limit == 0 {
		return DefaultListLimit
	}
	return p.Limit
}

// limit is the page's size, or an EInvalid error out of range.
func (p Page) limit() (int, error) {
	if n := p.PageSize(); n < 1 || n > MaxListLimit {
		return 0, invalid([]FieldError{{Field: "limit", Code: "out_of_range", Detail: fmt.Sprintf("limit doit être entre 1 et %d", MaxListLimit)}})
	}
	return p.PageSize(), nil
}

// ListFilter selects dossiers of an instructeur's tab.
type ListFilter struct {
	Tab string
	Page
}

// ListForInstructeur returns the dossiers of the procedures the instructeur
// instructs, for one tab: a_suivre (not decided, followed by nobody), suivis
// (not decided, followed by this instructeur), traites (decided), expirant
// (to be purged within RetentionNotice), tous. Purged dossiers are in none.
// The list holds dossiers without their history and e-mails.
func (s *Service) ListForInstructeur(ctx context.Context, email string, f ListFilter) ([]DossierSummary, error) {
	email, ok := NormalizeEmail(email)
	if !ok {
		return nil, invalid([]FieldError{{Field: "email", Code: "invalid_email", Detail: "adresse e-mail invalide"}})
	}
	switch f.Tab {
	case "":
		f.Tab = TabASuivre
	case TabASuivre, TabSuivis, TabTraites, TabExpirant, TabTous:
	default:
		return nil, invalid([]FieldError{{Field: "tab", Code: "invalid_tab", Detail: "onglet attendu : a_suivre, suivis, traites, expirant ou tous"}})
	}
	var err error
	if f.Limit, err = f.limit(); err != nil {
		return nil, err
	}
	procs, _ := visibleProcedures(ctx)
	q := s.reader(ctx)
	var inst Instructeur
	err = q.QueryRow(ctx, `SELECT id FROM instructeurs i WHERE email = $1 AND `+instructeurVisible, email, procs).Scan(&inst.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENotFound, "instructeur inconnu")
	} else if err != nil {
		return nil, err
	}
	return listTab(ctx, q, inst.ID, f, procs, s.opts.Now().Add(s.opts.RetentionNotice))
}

// SetPreferences sets an instructeur's notification mode: instant, daily or
// none.
func (s *Service) SetPreferences(ctx context.Context, email, notifications string) (inst *Instructeur, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		inst, err = s.SetPreferencesTx(ctx, tx, email, notifications)
		return err
	})
	return inst, err
}

// SetPreferencesTx is SetPreferences in the caller's transaction.
func (s *Service) SetPreferencesTx(ctx context.Context, tx pgx.Tx, email, notifications string) (*Instructeur, error) {
	var fields []FieldError
	email, ok := NormalizeEmail(email)
	if !ok {
		fields = append(fields, FieldError{Field: "email", Code: "invalid_email", Detail: "adresse e-mail invalide"})
	}
	switch notifications {
	case NotifyInstant, NotifyDaily, NotifyNone:
	default:
		fields = append(fields, FieldError{Field: "notifications", Code: "invalid_value", Detail: "valeur attendue : instant, daily ou none"})
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	inst := &Instructeur{Email: email}
	procs, _ := visibleProcedures(ctx)
	err := tx.QueryRow(ctx, `
		UPDATE instructeurs i SET notifications = $3 WHERE email = $1 AND `+instructeurVisible+`
		RETURNING id, nom, notifications`, email, procs, notifications).Scan(&inst.ID, &inst.Nom, &inst.Notifications)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENotFound, "instructeur inconnu")
	} else if err != nil {
		return nil, fmt.Errorf("set preferences: %w", err)
	}
	return inst, nil
}

// recordActivity writes an activity and schedules a notification for each
// follower in instant mode, except its author. Daily followers read
// activities from the table when their digest is due.
func (s *Service) recordActivity(ctx context.Context, tx pgx.Tx, dossierID int64, kind, author string, authorID int64, body string, now time.Time) (int64, error) {
	var authorRef *int64
	if authorID != 0 {
		authorRef = &authorID
	}
	var id int64
	if err := tx.QueryRow(ctx, `
		INSERT INTO activities (dossier_id, kind, author_instructeur_id, author, body, at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, dossierID, kind, authorRef, author, body, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("record activity on dossier %d: %w", dossierID, err)
	}
	rows, err := tx.Query(ctx, `
		SELECT f.instructeur_id FROM follows f JOIN instructeurs i ON i.id = f.instructeur_id
		WHERE f.dossier_id = $1 AND i.notifications = 'instant' AND f.instructeur_id <> $2
		ORDER BY f.instructeur_id`, dossierID, authorID)
	if err != nil {
		return 0, fmt.Errorf("followers of dossier %d: %w", dossierID, err)
	}
	followers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("followers of dossier %d: %w", dossierID, err)
	}
	tasks := make([]Task, 0, len(followers))
	for _, f := range followers {
		tasks = append(tasks, NotifyFollower{DossierID: dossierID, InstructeurID: f})
	}
	if len(tasks) == 0 {
		return id, nil
	}
	return id, s.enq.EnqueueTx(ctx, tx, tasks...)
}
