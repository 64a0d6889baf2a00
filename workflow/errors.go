package workflow

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the public contract: the HTTP API returns them
// as the `code` of its problem+json errors.
const (
	ENotFound            = "not_found"
	EInvalid             = "validation_failed"
	EInvalidTransition   = "invalid_transition"
	EMotivationRequired  = "motivation_required"
	ENotEditable         = "not_editable"
	ENotInstructeur      = "not_instructeur"
	EUnknownEvent        = "unknown_event"
	EInstructeurRequired = "instructeur_required"
	// EDossierSupprime: the dossier was purged (RGPD); the error carries
	// its tombstone.
	EDossierSupprime = "dossier_supprime"
	// EWebhooksNotConfigured: the server has no WEBHOOK_SECRET_KEY.
	EWebhooksNotConfigured = "webhooks_not_configured"
	// EWebhookDisabled: the subscription was disabled (its receiver
	// answered 410 Gone).
	EWebhookDisabled = "webhook_disabled"
)

// Error is the one error type of the domain. Code says what kind of failure it
// is; Message is safe to show to the API client (it holds no personal data).
type Error struct {
	Code    string
	Message string
	// Fields lists the bad fields of an EInvalid error, one entry per field.
	Fields []FieldError
	// Tombstone is what remains of the dossier of an EDossierSupprime error.
	Tombstone *Tombstone
}

// FieldError is one invalid input field.
type FieldError struct {
	// Field is the dotted path of the field, e.g. "demandeur.employeur.siret".
	Field string `json:"field"`
	// Code is a stable, machine-readable reason, e.g. "required", "invalid_siret".
	Code string `json:"code"`
	// Detail is a human-readable explanation, in French.
	Detail string `json:"detail"`
}

func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		return fmt.Sprintf("%s: %s (%d invalid fields)", e.Code, e.Message, len(e.Fields))
	}
	return e.Code + ": " + e.Message
}

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, else "".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// invalid returns an EInvalid error for fields, or nil if there are none.
func invalid(fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Code: EInvalid, Message: "certains champs sont invalides", Fields: fields}
}
