package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// JSONError is why DecodeJSON refused a document.
type JSONError struct {
	// Malformed says the document is not one JSON value: a syntax error,
	// a truncated or empty document, or something after the value.
	Malformed bool
	// Field, when its Field is set, is the one field at fault, its path
	// from the decoded value ("employeur.siret"): a value of the wrong type
	// (code invalid_type) or a field the value does not have
	// (unknown_field; encoding/json gives its key only, so a nested one is
	// named by its key). Unset, the document is JSON but does not fit as a
	// whole (an array where an object is expected).
	Field FieldError
	// Err is encoding/json's error.
	Err error
}

// Error returns encoding/json's message.
func (e *JSONError) Error() string { return e.Err.Error() }

// Unwrap returns encoding/json's error.
func (e *JSONError) Unwrap() error { return e.Err }

// DecodeJSON decodes data, which must hold exactly one JSON value, into v,
// refusing the fields that v does not have. Its error is a *JSONError that
// says what is wrong: the API turns it into 400 invalid_json or into a
// field entry. A custom UnmarshalJSON that returns a *json.UnmarshalTypeError
// gets its field named too (encoding/json adds the path).
//
// This is the one place that reads encoding/json's errors, and
// TestDecodeJSON holds it to the real library.
func DecodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return nil
		}
		if err == nil {
			err = errors.New("json: data after the value")
		}
		return &JSONError{Malformed: true, Err: err}
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &JSONError{Malformed: true, Err: err}
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return &JSONError{Err: err, Field: FieldError{Field: typ.Field, Code: "invalid_type", Detail: "type attendu : " + typ.Type.String()}}
	}
	// An unknown field has no error type of its own in encoding/json: its
	// message, `json: unknown field "name"`, is where the name is.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unquoted, uerr := strconv.Unquote(name); uerr == nil {
			name = unquoted
		}
		return &JSONError{Err: err, Field: FieldError{Field: name, Code: "unknown_field", Detail: "champ inconnu"}}
	}
	return &JSONError{Err: err}
}

// jsonFieldError is the entry of a DecodeJSON error for a value found at
// prefix ("demandeur") in a larger document: the field at fault under it,
// or prefix itself.
func jsonFieldError(prefix string, err error) FieldError {
	var je *JSONError
	switch {
	case errors.As(err, &je) && je.Field.Field != "":
		fe := je.Field
		fe.Field = prefix + "." + fe.Field
		return fe
	case je != nil && je.Malformed:
		return FieldError{Field: prefix, Code: "invalid_json", Detail: "JSON mal formé"}
	default:
		return FieldError{Field: prefix, Code: "invalid_type", Detail: "objet attendu"}
	}
}
