package workflow

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Webhook event types: what an upstream app may subscribe to. They are part
// of the public contract: a name never changes once shipped.
const (
	WebhookDossierCreated      = "dossier.created"
	WebhookDossierStateChanged = "dossier.state_changed"
	WebhookDossierModified     = "dossier.modified"
	WebhookMessageCreated      = "message.created"
	WebhookAvisCreated         = "avis.created"
	WebhookAttestationReady    = "attestation.ready"
	WebhookEmailFailed         = "email.failed"
	WebhookDossierStale        = "dossier.stale"
	WebhookDossierExpiring     = "dossier.expiring"
	WebhookDossierDeleted      = "dossier.deleted"
)

// WebhookEventTypes lists every webhook event type, in the order of the
// contract.
func WebhookEventTypes() []string {
	return []string{
		WebhookDossierCreated, WebhookDossierStateChanged, WebhookDossierModified,
		WebhookMessageCreated, WebhookAvisCreated, WebhookAttestationReady,
		WebhookEmailFailed, WebhookDossierStale, WebhookDossierExpiring,
		WebhookDossierDeleted,
	}
}

// Webhook delivery statuses.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// Webhook subscription statuses.
const (
	WebhookActive   = "active"
	WebhookDisabled = "disabled"
)

// MaxWebhooksPerProcedure bounds the active subscriptions of a procedure:
// each change writes one delivery per subscription that wants it, in its
// own transaction.
const MaxWebhooksPerProcedure = 20

// DefaultSecretRotationGrace is how long the previous secret of a
// subscription still signs after a rotation.
const DefaultSecretRotationGrace = 24 * time.Hour

// webhookSecretPrefix and webhookSecretBytes are the Standard Webhooks
// secret format: whsec_ and the base64 of 24 to 64 random bytes.
const (
	webhookSecretPrefix = "whsec_"
	webhookSecretBytes  = 32
)

// SecretBox seals webhook secrets at rest and opens them to sign; the
// jobs/webhook Keyring (WEBHOOK_SECRET_KEY) is one. aad binds a sealed
// secret to its row.
type SecretBox interface {
	Seal(aad, plaintext []byte) (keyID string, sealed []byte, err error)
	Open(keyID string, aad, sealed []byte) ([]byte, error)
}

// TargetChecker checks the URL of a new subscription (its scheme, and the
// addresses its host resolves to); the jobs/webhook Policy is one. Its
// error says why, in French, without the URL; if it has a Code() method,
// that is the code of the field error.
type TargetChecker interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// Webhook is a procedure's subscription: where to post which events.
type Webhook struct {
	ID          int64    `json:"id"`
	ProcedureID int64    `json:"procedure_id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	// Secret is shown once: when the subscription is created, and when its
	// secret is rotated.
	Secret                  string     `json:"secret,omitempty"`
	Status                  string     `json:"status"`
	DisabledAt              *time.Time `json:"disabled_at"`
	DisabledReason          *string    `json:"disabled_reason"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
}

// WebhookInput is what creates a subscription. No events (or an empty
// list) means all of them.
type WebhookInput struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// WebhookDelivery is one row of a subscription's delivery log: one event,
// one receiver.
type WebhookDelivery struct {
	ID             int64      `json:"id"`
	EventID        string     `json:"event_id"`
	Type           string     `json:"type"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// webhookAAD binds a sealed secret to its subscription.
func webhookAAD(id int64) []byte {
	return []byte("aptflow webhook_subscriptions " + strconv.FormatInt(id, 10))
}

// webhooksReady says whether subscriptions can be created and signed.
func (s *Service) webhooksReady() error {
	if s.opts.WebhookSecrets == nil || s.opts.WebhookTargets == nil {
		return Errorf(EWebhooksNotConfigured, "les webhooks ne sont pas configurés sur ce serveur (WEBHOOK_SECRET_KEY)")
	}
	return nil
}

// CreateWebhook subscribes url to the events of a procedure. The URL is
// checked (https:// to a public address, or WEBHOOK_ALLOWED_NETWORKS), the
// events must be known. The secret it returns is not shown again.
func (s *Service) CreateWebhook(ctx context.Context, procedureID int64, in WebhookInput) (w *Webhook, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		w, err = s.CreateWebhookTx(ctx, tx, procedureID, in)
		return err
	})
	return w, err
}

// CreateWebhookTx is CreateWebhook in the caller's transaction.
func (s *Service) CreateWebhookTx(ctx context.Context, tx pgx.Tx, procedureID int64, in WebhookInput) (*Webhook, error) {
	if err := s.webhooksReady(); err != nil {
		return nil, err
	}
	v := validator{}
	u := strings.TrimSpace(in.URL)
	if u == "" {
		v.add("url", "required", "l'URL est obligatoire")
	} else if err := s.opts.WebhookTargets.CheckURL(ctx, u); err != nil {
		code := "invalid_url"
		var c interface{ Code() string }
		if errors.As(err, &c) {
			code = c.Code()
		}
		v.add("url", code, err.Error())
	}
	events := []string{}
	known := WebhookEventTypes()
	for i, e := range in.Events {
		switch {
		case !slices.Contains(known, e):
			v.add("events."+strconv.Itoa(i), "unknown_event_type", "type inconnu ; types : "+strings.Join(known, ", "))
		case !slices.Contains(events, e):
			events = append(events, e)
		}
	}
	if err := invalid(v.errs); err != nil {
		return nil, err
	}
	w := &Webhook{ProcedureID: procedureID, URL: u, Events: events, Status: WebhookActive}
	if _, err := getProcedure(ctx, tx, procedureID); err != nil {
		return nil, err
	}
	// The procedure's row lock orders concurrent creations: the count
	// below cannot be passed by two at once.
	var n int
	if err := tx.QueryRow(ctx, `
		WITH p AS (SELECT id FROM procedures WHERE id = $1 FOR UPDATE)
		SELECT count(*) FROM webhook_subscriptions s, p
		WHERE s.procedure_id = p.id AND s.disabled_at IS NULL AND s.deleted_at IS NULL`, procedureID).Scan(&n); err != nil {
		return nil, fmt.Errorf("webhooks of procedure %d: %w", procedureID, err)
	}
	if n >= MaxWebhooksPerProcedure {
		return nil, invalid([]FieldError{{Field: "url", Code: "too_many_webhooks",
			Detail: fmt.Sprintf("cette procédure a déjà %d webhooks actifs", MaxWebhooksPerProcedure)}})
	}
	// The id is taken first: the sealed secret is bound to it.
	if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('webhook_subscriptions', 'id'))`).Scan(&w.ID); err != nil {
		return nil, fmt.Errorf("webhook id: %w", err)
	}
	secret, keyID, sealed, err := s.newSealedSecret(w.ID)
	if err != nil {
		return nil, err
	}
	w.Secret = secret
	if err := tx.QueryRow(ctx, `
		INSERT INTO webhook_subscriptions (id, procedure_id, url, events, secret_key_id, secret, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
		w.ID, procedureID, u, events, keyID, sealed, s.opts.Now()).Scan(&w.CreatedAt); err != nil {
		return nil, fmt.Errorf("create webhook: %w", err)
	}
	return w, nil
}

// newSealedSecret returns a new secret for subscription id, in its
// Standard Webhooks form, and sealed for the database.
func (s *Service) newSealedSecret(id int64) (secret, keyID string, sealed []byte, err error) {
	key := make([]byte, webhookSecretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", "", nil, fmt.Errorf("webhook secret: %w", err)
	}
	if keyID, sealed, err = s.opts.WebhookSecrets.Seal(webhookAAD(id), key); err != nil {
		return "", "", nil, err
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(key), keyID, sealed, nil
}

// webhookColumns are the columns scanWebhook reads, from alias s.
const webhookColumns = `s.id, s.procedure_id, s.url, s.events, s.disabled_at, s.disabled_reason,
	CASE WHEN s.previous_secret_expires_at > now() THEN s.previous_secret_expires_at END, s.created_at`

func scanWebhook(row pgx.CollectableRow) (Webhook, error) {
	var w Webhook
	err := row.Scan(&w.ID, &w.ProcedureID, &w.URL, &w.Events, &w.DisabledAt, &w.DisabledReason,
		&w.PreviousSecretExpiresAt, &w.CreatedAt)
	w.Status = WebhookActive
	if w.DisabledAt != nil {
		w.Status = WebhookDisabled
	}
	if w.Events == nil {
		w.Events = []string{}
	}
	return w, err
}

// ListWebhooks returns the subscriptions of a procedure, active and
// disabled, without their secrets.
func (s *Service) ListWebhooks(ctx context.Context, procedureID int64) ([]Webhook, error) {
	q := s.reader(ctx)
	if _, err := getProcedure(ctx, q, procedureID); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT `+webhookColumns+` FROM webhook_subscriptions s
		WHERE s.procedure_id = $1 AND s.deleted_at IS NULL ORDER BY s.id`, procedureID)
	if err != nil {
		return nil, fmt.Errorf("webhooks of procedure %d: %w", procedureID, err)
	}
	list, err := pgx.CollectRows(rows, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("webhooks of procedure %d: %w", procedureID, err)
	}
	if list == nil {
		list = []Webhook{}
	}
	return list, nil
}

// lockWebhook locks a subscription of a procedure that is not deleted, or
// returns ENotFound.
func lockWebhook(ctx context.Context, tx pgx.Tx, procedureID, id int64) (*Webhook, error) {
	if !visible(ctx, procedureID) {
		return nil, Errorf(ENotFound, "webhook %d inconnu sur la procédure %d", id, procedureID)
	}
	rows, err := tx.Query(ctx, `SELECT `+webhookColumns+` FROM webhook_subscriptions s
		WHERE s.id = $1 AND s.procedure_id = $2 AND s.deleted_at IS NULL FOR UPDATE`, id, procedureID)
	if err != nil {
		return nil, fmt.Errorf("webhook %d: %w", id, err)
	}
	w, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENotFound, "webhook %d inconnu sur la procédure %d", id, procedureID)
	} else if err != nil {
		return nil, fmt.Errorf("webhook %d: %w", id, err)
	}
	return &w, nil
}

// DeleteWebhook deletes a subscription: nothing more is sent to it, and
// its pending deliveries fail. Its delivery log is kept.
func (s *Service) DeleteWebhook(ctx context.Context, procedureID, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return s.DeleteWebhookTx(ctx, tx, procedureID, id) })
}

// DeleteWebhookTx is DeleteWebhook in the caller's transaction.
func (s *Service) DeleteWebhookTx(ctx context.Context, tx pgx.Tx, procedureID, id int64) error {
	if _, err := lockWebhook(ctx, tx, procedureID, id); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_subscriptions SET deleted_at = $2 WHERE id = $1`, id, s.opts.Now()); err != nil {
		return fmt.Errorf("delete webhook %d: %w", id, err)
	}
	return failPending(ctx, tx, id, "subscription deleted")
}

// failPending fails the pending deliveries of a subscription that nothing
// will be sent to any more; their jobs find them failed and stop.
func failPending(ctx context.Context, tx pgx.Tx, subscriptionID int64, reason string) error {
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_deliveries SET status = 'failed', last_error = $2
		WHERE subscription_id = $1 AND status = 'pending'`, subscriptionID, reason); err != nil {
		return fmt.Errorf("pending deliveries of webhook %d: %w", subscriptionID, err)
	}
	return nil
}

// RotateWebhookSecret gives a subscription a new secret, returned once.
// The previous one keeps signing too (a second signature in
// webhook-signature) for the rotation's grace period, so that the receiver
// can switch without losing a delivery.
func (s *Service) RotateWebhookSecret(ctx context.Context, procedureID, id int64) (w *Webhook, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		w, err = s.RotateWebhookSecretTx(ctx, tx, procedureID, id)
		return err
	})
	return w, err
}

// RotateWebhookSecretTx is RotateWebhookSecret in the caller's transaction.
func (s *Service) RotateWebhookSecretTx(ctx context.Context, tx pgx.Tx, procedureID, id int64) (*Webhook, error) {
	if err := s.webhooksReady(); err != nil {
		return nil, err
	}
	w, err := lockWebhook(ctx, tx, procedureID, id)
	if err != nil {
		return nil, err
	}
	secret, keyID, sealed, err := s.newSealedSecret(id)
	if err != nil {
		return nil, err
	}
	expires := s.opts.Now().Add(s.opts.SecretRotationGrace)
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_subscriptions SET
			previous_secret_key_id = secret_key_id, previous_secret = secret, previous_secret_expires_at = $4,
			secret_key_id = $2, secret = $3
		WHERE id = $1`, id, keyID, sealed, expires); err != nil {
		return nil, fmt.Errorf("rotate secret of webhook %d: %w", id, err)
	}
	w.Secret, w.PreviousSecretExpiresAt = secret, &expires
	return w, nil
}

// WebhookDeliveryFilter selects deliveries of a subscription's log.
type WebhookDeliveryFilter struct {
	Status string // "" for any
	Page
}

// ListWebhookDeliveries returns a page of a subscription's delivery log,
// oldest first.
func (s *Service) ListWebhookDeliveries(ctx context.Context, procedureID, id int64, f WebhookDeliveryFilter) ([]WebhookDelivery, error) {
	var fields []FieldError
	switch f.Status {
	case "", WebhookPending, WebhookDelivered, WebhookFailed:
	default:
		fields = append(fields, FieldError{Field: "status", Code: "invalid_value", Detail: "valeur attendue : pending, delivered ou failed"})
	}
	f.Limit = f.PageSize()
	if f.Limit < 1 || f.Limit > MaxListLimit {
		fields = append(fields, FieldError{Field: "limit", Code: "out_of_range", Detail: fmt.Sprintf("limit doit être entre 1 et %d", MaxListLimit)})
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	q := s.reader(ctx)
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_subscriptions
		WHERE id = $1 AND procedure_id = $2 AND deleted_at IS NULL)`, id, procedureID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("webhook %d: %w", id, err)
	}
	if !exists || !visible(ctx, procedureID) {
		return nil, Errorf(ENotFound, "webhook %d inconnu sur la procédure %d", id, procedureID)
	}
	rows, err := q.Query(ctx, `SELECT `+webhookDeliveryColumns+`
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.subscription_id = $1 AND d.id > $2 AND ($3 = '' OR d.status = $3)
		ORDER BY d.id LIMIT $4`, id, f.AfterID, f.Status, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %d: %w", id, err)
	}
	list, err := pgx.CollectRows(rows, scanWebhookDelivery)
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %d: %w", id, err)
	}
	if list == nil {
		list = []WebhookDelivery{}
	}
	return list, nil
}

// webhookDeliveryColumns are the columns scanWebhookDelivery reads, from
// aliases d (the delivery) and e (its event).
const webhookDeliveryColumns = `d.id, e.msg_id, e.type, d.status, d.attempts, d.last_status_code,
	d.last_error, d.last_attempt_at, d.delivered_at, d.created_at`

func scanWebhookDelivery(row pgx.CollectableRow) (WebhookDelivery, error) {
	var d WebhookDelivery
	err := row.Scan(&d.ID, &d.EventID, &d.Type, &d.Status, &d.Attempts, &d.LastStatusCode,
		&d.LastError, &d.LastAttemptAt, &d.DeliveredAt, &d.CreatedAt)
	return d, err
}

// RetryWebhookDelivery sends a delivery again, whatever its status: a
// failed one gets a new series of attempts, a delivered one is replayed
// (same webhook-id, so a receiver that keeps ids recognises it), a pending
// one is tried now instead of at its next retry. The subscription must be
// active (EWebhookDisabled). The delivery's generation moves on: the
// series of attempts before it stops, even one attempt running now, whose
// outcome is not recorded (the new series sends after this call).
func (s *Service) RetryWebhookDelivery(ctx context.Context, procedureID, id, deliveryID int64) (d *WebhookDelivery, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		d, err = s.RetryWebhookDeliveryTx(ctx, tx, procedureID, id, deliveryID)
		return err
	})
	return d, err
}

// RetryWebhookDeliveryTx is RetryWebhookDelivery in the caller's
// transaction.
func (s *Service) RetryWebhookDeliveryTx(ctx context.Context, tx pgx.Tx, procedureID, id, deliveryID int64) (*WebhookDelivery, error) {
	w, err := lockWebhook(ctx, tx, procedureID, id)
	if err != nil {
		return nil, err
	}
	if w.Status != WebhookActive {
		return nil, Errorf(EWebhookDisabled, "le webhook %d est désactivé (%s) : créez-en un autre", id, deref(w.DisabledReason))
	}
	// A new generation: the job of the previous one, waiting or running,
	// stops without recording; this one's job makes a new series of
	// attempts.
	var gen int64
	rows, err := tx.Query(ctx, `
		WITH d AS (
			UPDATE webhook_deliveries SET status = 'pending', delivered_at = NULL, generation = generation + 1
			WHERE id = $1 AND subscription_id = $2
			RETURNING *
		)
		SELECT `+webhookDeliveryColumns+`, d.generation FROM d JOIN webhook_events e ON e.id = d.event_id`, deliveryID, id)
	if err != nil {
		return nil, fmt.Errorf("retry webhook delivery %d: %w", deliveryID, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (WebhookDelivery, error) {
		var d WebhookDelivery
		return d, row.Scan(&d.ID, &d.EventID, &d.Type, &d.Status, &d.Attempts, &d.LastStatusCode,
			&d.LastError, &d.LastAttemptAt, &d.DeliveredAt, &d.CreatedAt, &gen)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENotFound, "livraison %d inconnue sur le webhook %d", deliveryID, id)
	} else if err != nil {
		return nil, fmt.Errorf("retry webhook delivery %d: %w", deliveryID, err)
	}
	if err := s.enq.EnqueueTx(ctx, tx, DeliverWebhook{DeliveryID: deliveryID, Generation: gen}); err != nil {
		return nil, fmt.Errorf("enqueue webhook delivery %d: %w", deliveryID, err)
	}
	return &d, nil
}

// webhookEvent is an event a change causes, for those subscriptions of its
// procedure that want it. data always holds the dossier's and the
// procedure's ids, and otherwise ids and states only: never personal data.
type webhookEvent struct {
	procedureID int64
	typ         string
	data        map[string]any
}

// dossierEvent is an event about a dossier of a procedure; extra are
// name, value pairs added to its data.
func dossierEvent(typ string, procedureID, dossierID int64, extra ...any) webhookEvent {
	data := map[string]any{"dossier_id": dossierID, "procedure_id": procedureID}
	for i := 0; i+1 < len(extra); i += 2 {
		data[extra[i].(string)] = extra[i+1]
	}
	return webhookEvent{procedureID: procedureID, typ: typ, data: data}
}

// emitStmt writes events, each only if an active subscription of its
// procedure wants it, and one delivery per such subscription; it returns
// the deliveries' ids. Without subscriptions, it writes nothing: a change
// pays one index lookup.
func emitStmt(at time.Time, evs ...webhookEvent) (stmt, error) {
	procs := make([]int64, len(evs))
	types := make([]string, len(evs))
	datas := make([]string, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e.data)
		if err != nil {
			return stmt{}, fmt.Errorf("webhook event %s: %w", e.typ, err)
		}
		procs[i], types[i], datas[i] = e.procedureID, e.typ, string(b)
	}
	return stmt{`
		WITH subs AS (
			SELECT id, procedure_id, events FROM webhook_subscriptions
			WHERE procedure_id = ANY($1) AND disabled_at IS NULL AND deleted_at IS NULL
		), ev AS (
			INSERT INTO webhook_events (procedure_id, type, data, occurred_at)
			SELECT e.procedure_id, e.type, e.data, $4
			FROM unnest($1::bigint[], $2::text[], $3::jsonb[]) AS e (procedure_id, type, data)
			WHERE EXISTS (SELECT 1 FROM subs s WHERE s.procedure_id = e.procedure_id
				AND (s.events = '{}' OR e.type = ANY (s.events)))
			RETURNING id, procedure_id, type
		)
		INSERT INTO webhook_deliveries (event_id, subscription_id, created_at)
		SELECT ev.id, s.id, $4 FROM ev JOIN subs s ON s.procedure_id = ev.procedure_id
			AND (s.events = '{}' OR ev.type = ANY (s.events))
		ORDER BY ev.id, s.id
		RETURNING id`, []any{procs, types, datas, at}}, nil
}

// emitTx writes events in tx and enqueues their deliveries in tx: an event
// that rolls back never goes out, a committed one always does.
func (s *Service) emitTx(ctx context.Context, tx pgx.Tx, at time.Time, evs ...webhookEvent) error {
	if len(evs) == 0 {
		return nil
	}
	st, err := emitStmt(at, evs...)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, st.sql, st.args...)
	if err != nil {
		return fmt.Errorf("webhook events: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("webhook events: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	if err := s.enq.EnqueueTx(ctx, tx, webhookTasks(ids)...); err != nil {
		return fmt.Errorf("enqueue webhook deliveries: %w", err)
	}
	return nil
}

// webhookTasks are the jobs of deliveries.
func webhookTasks(ids []int64) []Task {
	tasks := make([]Task, len(ids))
	for i, id := range ids {
		tasks[i] = DeliverWebhook{DeliveryID: id}
	}
	return tasks
}

// WebhookSend is what one attempt at a delivery sends, as WebhookSend
// reads it.
type WebhookSend struct {
	DeliveryID     int64
	SubscriptionID int64
	// Status is the delivery's: only a pending one is sent.
	Status string
	// Generation is the delivery's: a job of another generation stops.
	Generation int64
	// Active says that the subscription is neither disabled nor deleted.
	Active bool
	URL    string
	// MsgID is the webhook-id: the event's, the same on every attempt.
	MsgID string
	Type  string
	// Body is the request's body: {"type", "timestamp", "data"}, the same
	// bytes on every attempt.
	Body []byte
	// Secrets are the subscription's secrets, decoded, the current one
	// first, then the previous one during a rotation.
	Secrets [][]byte
}

// ErrWebhookSecret wraps a subscription's secret that the SecretBox cannot
// open: WEBHOOK_SECRET_KEY no longer holds the key that sealed it.
var ErrWebhookSecret = errors.New("webhook secret cannot be opened")

// WebhookSend reads what an attempt at delivery id sends, and opens the
// subscription's secrets (ErrWebhookSecret if it cannot). ENotFound when
// there is no such delivery.
func (s *Service) WebhookSend(ctx context.Context, id int64) (*WebhookSend, error) {
	if err := s.webhooksReady(); err != nil {
		return nil, err
	}
	w := &WebhookSend{DeliveryID: id}
	var (
		data                  []byte
		occurredAt            time.Time
		keyID                 string
		sealed                []byte
		prevKeyID             *string
		prevSealed            []byte
		prevExpires           *time.Time
		disabledAt, deletedAt *time.Time
	)
	err := s.reader(ctx).QueryRow(ctx, `
		SELECT d.subscription_id, d.status, d.generation, s.url, e.msg_id, e.type, e.data, e.occurred_at,
			s.secret_key_id, s.secret, s.previous_secret_key_id, s.previous_secret, s.previous_secret_expires_at,
			s.disabled_at, s.deleted_at
		FROM webhook_deliveries d
		JOIN webhook_events e ON e.id = d.event_id
		JOIN webhook_subscriptions s ON s.id = d.subscription_id
		WHERE d.id = $1`, id).Scan(&w.SubscriptionID, &w.Status, &w.Generation, &w.URL, &w.MsgID, &w.Type, &data, &occurredAt,
		&keyID, &sealed, &prevKeyID, &prevSealed, &prevExpires, &disabledAt, &deletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENotFound, "livraison %d inconnue", id)
	} else if err != nil {
		return nil, fmt.Errorf("webhook delivery %d: %w", id, err)
	}
	w.Active = disabledAt == nil && deletedAt == nil
	if w.Body, err = json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{w.Type, occurredAt.UTC().Format(time.RFC3339Nano), data}); err != nil {
		return nil, fmt.Errorf("webhook delivery %d: %w", id, err)
	}
	aad := webhookAAD(w.SubscriptionID)
	key, err := s.opts.WebhookSecrets.Open(keyID, aad, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: webhook %d: %w", ErrWebhookSecret, w.SubscriptionID, err)
	}
	w.Secrets = [][]byte{key}
	if prevKeyID != nil && prevExpires != nil && prevExpires.After(s.opts.Now()) {
		prev, err := s.opts.WebhookSecrets.Open(*prevKeyID, aad, prevSealed)
		if err != nil {
			return nil, fmt.Errorf("%w: previous secret of webhook %d: %w", ErrWebhookSecret, w.SubscriptionID, err)
		}
		w.Secrets = append(w.Secrets, prev)
	}
	return w, nil
}

// WebhookAttempt is the outcome of one attempt at a delivery.
type WebhookAttempt struct {
	// Generation is the delivery's when the attempt began: if a manual
	// retry moved it on since, the outcome is not recorded.
	Generation int64
	// StatusCode is the receiver's HTTP status; 0 when no answer came.
	StatusCode int
	// Error says why the attempt failed; "" when the receiver took it.
	Error string
	// Final says that no attempt follows a failed one: the delivery fails.
	Final bool
}

// MaxWebhookErrorLen bounds what a delivery keeps in last_error, in
// characters.
const MaxWebhookErrorLen = 500

// RecordWebhookAttempt records an attempt at delivery id: delivered (a
// 2xx), failed (a final failure), or still pending, to be retried; unless
// the delivery's generation moved on (a manual retry) since the attempt
// began.
func (s *Service) RecordWebhookAttempt(ctx context.Context, id int64, a WebhookAttempt) error {
	return s.inStatement(ctx, func(q querier) error { return s.recordWebhookAttempt(ctx, q, id, a) })
}

// RecordWebhookAttemptTx is RecordWebhookAttempt in the caller's
// transaction.
func (s *Service) RecordWebhookAttemptTx(ctx context.Context, tx pgx.Tx, id int64, a WebhookAttempt) error {
	return s.recordWebhookAttempt(ctx, tx, id, a)
}

func (s *Service) recordWebhookAttempt(ctx context.Context, q querier, id int64, a WebhookAttempt) error {
	status := WebhookPending
	switch {
	case a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300:
		status = WebhookDelivered
	case a.Final:
		status = WebhookFailed
	}
	var code *int
	if a.StatusCode != 0 {
		code = &a.StatusCode
	}
	var lastErr *string
	if a.Error != "" {
		e := clip(a.Error, MaxWebhookErrorLen)
		lastErr = &e
	}
	now := s.opts.Now()
	if _, err := q.Exec(ctx, `
		UPDATE webhook_deliveries SET status = $2::text, attempts = attempts + 1, last_status_code = $3,
			last_error = $4, last_attempt_at = $5::timestamptz,
			delivered_at = CASE WHEN $2::text = 'delivered' THEN $5::timestamptz END
		WHERE id = $1 AND generation = $6`, id, status, code, lastErr, now, a.Generation); err != nil {
		return fmt.Errorf("record attempt of webhook delivery %d: %w", id, err)
	}
	return nil
}

// WebhookGone records that the receiver of delivery id answered 410 Gone:
// the delivery fails, its subscription is disabled and its other pending
// deliveries fail, in one transaction. Nothing more is sent to it.
func (s *Service) WebhookGone(ctx context.Context, id int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return s.WebhookGoneTx(ctx, tx, id) })
}

// WebhookGoneTx is WebhookGone in the caller's transaction.
func (s *Service) WebhookGoneTx(ctx context.Context, tx pgx.Tx, id int64) error {
	now := s.opts.Now()
	var sub int64
	if err := tx.QueryRow(ctx, `
		UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, last_status_code = 410,
			last_error = 'HTTP 410 Gone: subscription disabled', last_attempt_at = $2
		WHERE id = $1 RETURNING subscription_id`, id, now).Scan(&sub); err != nil {
		return fmt.Errorf("record 410 of webhook delivery %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_subscriptions SET disabled_at = $2, disabled_reason = 'the receiver answered 410 Gone'
		WHERE id = $1 AND disabled_at IS NULL`, sub, now); err != nil {
		return fmt.Errorf("disable webhook %d: %w", sub, err)
	}
	return failPending(ctx, tx, sub, "subscription disabled: the receiver answered 410 Gone")
}

// AbandonWebhookDelivery fails delivery id without an attempt: its
// subscription was disabled or deleted after it was written.
func (s *Service) AbandonWebhookDelivery(ctx context.Context, id int64, reason string) error {
	return s.inStatement(ctx, func(q querier) error { return abandonWebhookDelivery(ctx, q, id, reason) })
}

// AbandonWebhookDeliveryTx is AbandonWebhookDelivery in the caller's
// transaction.
func (s *Service) AbandonWebhookDeliveryTx(ctx context.Context, tx pgx.Tx, id int64, reason string) error {
	return abandonWebhookDelivery(ctx, tx, id, reason)
}

func abandonWebhookDelivery(ctx context.Context, q querier, id int64, reason string) error {
	if _, err := q.Exec(ctx, `
		UPDATE webhook_deliveries SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'pending'`,
		id, clip(reason, MaxWebhookErrorLen)); err != nil {
		return fmt.Errorf("abandon webhook delivery %d: %w", id, err)
	}
	return nil
}
