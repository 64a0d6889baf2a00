package workflow

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// MaxBodyLen bounds a message or an avis, in characters.
const MaxBodyLen = 20000

// FromUsager is the author of a message written by the applicant.
const FromUsager = "usager"

// Message is a message of the dossier's messaging, or an avis.
type Message struct {
	ID        int64     `json:"id"`
	DossierID int64     `json:"dossier_id"`
	Kind      string    `json:"kind"`
	From      string    `json:"from"`
	Body      string    `json:"body"`
	At        time.Time `json:"at"`
}

// checkBody validates the body of a message or an avis.
func checkBody(body string) *FieldError {
	switch {
	case !utf8.ValidString(body):
		return &FieldError{Field: "body", Code: "invalid_utf8", Detail: "le message n'est pas de l'UTF-8 valide"}
	case strings.TrimSpace(body) == "":
		return &FieldError{Field: "body", Code: "required", Detail: "le message est obligatoire"}
	case utf8.RuneCountInString(body) > MaxBodyLen:
		return &FieldError{Field: "body", Code: "too_long", Detail: fmt.Sprintf("le message dépasse %d caractères", MaxBodyLen)}
	}
	for _, r := range body {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return &FieldError{Field: "body", Code: "control_character", Detail: "le message contient un caractère de contrôle"}
		}
		if spoofing(r) {
			fe := spoofingField("body")
			return &fe
		}
	}
	return nil
}

// PostMessage adds a message to a dossier's messaging, open in every state.
// from is "usager" (the applicant) or the e-mail of an instructeur of the
// procedure (ENotInstructeur otherwise). The followers hear of it, except its
// author; a message from an instructeur is also e-mailed to the applicant.
func (s *Service) PostMessage(ctx context.Context, dossierID int64, from, body string) (*Message, error) {
	var m *Message
	err := s.inTx(ctx, func(tx pgx.Tx) (err error) {
		m, err = s.PostMessageTx(ctx, tx, dossierID, from, body)
		return err
	})
	return m, err
}

// PostMessageTx is PostMessage in the caller's transaction.
func (s *Service) PostMessageTx(ctx context.Context, tx pgx.Tx, dossierID int64, from, body string) (*Message, error) {
	var fields []FieldError
	if fe := checkBody(body); fe != nil {
		fields = append(fields, *fe)
	}
	email := FromUsager
	if from != FromUsager {
		var ok bool
		if email, ok = NormalizeEmail(from); !ok {
			fields = append(fields, FieldError{Field: "from", Code: "invalid_from", Detail: "« usager » ou l'e-mail d'un instructeur attendu"})
		}
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	// The row lock orders the dossier's activities: their ids commit in
	// order, which the followers' cursors rely on. The same query tells
	// whether the author instructs the dossier's procedure.
	cur, instID, err := lockDossierAs(ctx, tx, dossierID, email)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	m := &Message{DossierID: dossierID, From: email, Body: body, At: now}
	if email == FromUsager {
		m.Kind = ActivityMessageUsager
		if _, err := tx.Exec(ctx, `UPDATE dossiers SET last_activity_at = $2, stale_since = NULL WHERE id = $1`, dossierID, now); err != nil {
			return nil, fmt.Errorf("dossier %d activity: %w", dossierID, err)
		}
		if m.ID, err = s.recordActivity(ctx, tx, dossierID, m.Kind, FromUsager, 0, body, now); err != nil {
			return nil, err
		}
		if err := s.emitTx(ctx, tx, now, messageEvent(cur.procedureID, dossierID, m.ID, FromUsager)); err != nil {
			return nil, err
		}
		return m, nil
	}
	if instID == 0 {
		return nil, Errorf(ENotInstructeur, "cet instructeur n'instruit pas la procédure de ce dossier")
	}
	m.Kind = ActivityMessageInstructeur
	if m.ID, err = s.recordActivity(ctx, tx, dossierID, m.Kind, email, instID, body, now); err != nil {
		return nil, err
	}
	did, err := addDelivery(ctx, tx, dossierID, MailMessageUsager, cur.usagerEmail,
		map[string]any{"activity_ids": []int64{m.ID}}, now)
	if err != nil {
		return nil, err
	}
	if err := s.enq.EnqueueTx(ctx, tx, SendEmail{DeliveryID: did, Kind: MailMessageUsager}); err != nil {
		return nil, fmt.Errorf("enqueue message e-mail of dossier %d: %w", dossierID, err)
	}
	if err := s.emitTx(ctx, tx, now, messageEvent(cur.procedureID, dossierID, m.ID, "instructeur")); err != nil {
		return nil, err
	}
	return m, nil
}

// messageEvent is the webhook event of a message: who wrote it, usager or
// instructeur, never their address.
func messageEvent(procedureID, dossierID, messageID int64, from string) webhookEvent {
	return dossierEvent(WebhookMessageCreated, procedureID, dossierID, "message_id", messageID, "from", from)
}

// PostAvis adds an expert's opinion (avis) to a dossier; its followers hear
// of it.
func (s *Service) PostAvis(ctx context.Context, dossierID int64, expert, body string) (m *Message, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		m, err = s.PostAvisTx(ctx, tx, dossierID, expert, body)
		return err
	})
	return m, err
}

// PostAvisTx is PostAvis in the caller's transaction.
func (s *Service) PostAvisTx(ctx context.Context, tx pgx.Tx, dossierID int64, expert, body string) (*Message, error) {
	var fields []FieldError
	email, ok := NormalizeEmail(expert)
	if !ok {
		fields = append(fields, FieldError{Field: "expert", Code: "invalid_email", Detail: "adresse e-mail invalide"})
	}
	if fe := checkBody(body); fe != nil {
		fields = append(fields, *fe)
	}
	if err := invalid(fields); err != nil {
		return nil, err
	}
	cur, err := lockDossier(ctx, tx, dossierID)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	m := &Message{DossierID: dossierID, Kind: ActivityAvis, From: email, Body: body, At: now}
	// An expert may also be an instructeur following the dossier: they
	// are not told of their own avis.
	var authorID int64
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT id FROM instructeurs WHERE email = $1), 0)`, email).Scan(&authorID); err != nil {
		return nil, fmt.Errorf("expert of dossier %d: %w", dossierID, err)
	}
	if m.ID, err = s.recordActivity(ctx, tx, dossierID, ActivityAvis, email, authorID, body, now); err != nil {
		return nil, err
	}
	if err := s.emitTx(ctx, tx, now, dossierEvent(WebhookAvisCreated, cur.procedureID, dossierID, "avis_id", m.ID)); err != nil {
		return nil, err
	}
	return m, nil
}
