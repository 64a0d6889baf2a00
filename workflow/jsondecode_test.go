package workflow

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// day refuses anything but a YYYY-MM-DD string the way a custom type
// should: with a *json.UnmarshalTypeError, which encoding/json completes
// with the field's path.
type day string

func (d *day) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[day]()}
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return &json.UnmarshalTypeError{Value: "string " + s, Type: reflect.TypeFor[day]()}
	}
	*d = day(s)
	return nil
}

// TestDecodeJSON holds DecodeJSON to the real encoding/json: if a Go
// release changes its errors (the unknown field's message above all), this
// fails instead of the API answering 400 where it answered 422.
func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	type target struct {
		Nom       string  `json:"nom"`
		Heures    float64 `json:"heures"`
		Employeur struct {
			Siret string `json:"siret"`
			Debut day    `json:"debut"`
		} `json:"employeur"`
	}
	tests := []struct {
		name, in  string
		malformed bool
		field     string // the field at fault, "" for the document as a whole
		code      string
	}{
		{"OK", `{"nom": "Dupré", "heures": 17.5, "employeur": {"siret": "73282932000074", "debut": "2026-12-01"}}`, false, "", ""},
		{"WrongType", `{"nom": 3}`, false, "nom", "invalid_type"},
		{"WrongTypeNested", `{"employeur": {"siret": 73282932000074}}`, false, "employeur.siret", "invalid_type"},
		{"NumberTooLarge", `{"heures": 1e400}`, false, "heures", "invalid_type"},
		{"CustomTypeRefuses", `{"employeur": {"debut": "2026-02-30"}}`, false, "employeur.debut", "invalid_type"},
		{"UnknownField", `{"nom": "Dupré", "colour": "red"}`, false, "colour", "unknown_field"},
		{"UnknownFieldEscaped", `{"c\"ol\u00e9": 1}`, false, `c"olé`, "unknown_field"},
		{"UnknownFieldNested", `{"employeur": {"naf": "1071C"}}`, false, "naf", "unknown_field"}, // its key only: encoding/json gives no path
		{"Array", `[1, 2]`, false, "", ""},
		{"String", `"Dupré"`, false, "", ""},
		{"Empty", ``, true, "", ""},
		{"Truncated", `{"nom": "Dupré",`, true, "", ""},
		{"Syntax", `{"nom": 'Dupré'}`, true, "", ""},
		{"NotJSON", `not json`, true, "", ""},
		{"TwoValues", `{} {}`, true, "", ""},
		{"Trailing", `{"nom": "Dupré"} x`, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v target
			err := DecodeJSON([]byte(tt.in), &v)
			if tt.name == "OK" {
				if err != nil || v.Employeur.Debut != "2026-12-01" {
					t.Fatalf("DecodeJSON = %v, %+v", err, v)
				}
				return
			}
			var je *JSONError
			if !errors.As(err, &je) {
				t.Fatalf("DecodeJSON(%s) = %v (%T), want a *JSONError", tt.in, err, err)
			}
			if je.Malformed != tt.malformed || je.Field.Field != tt.field || je.Field.Code != tt.code {
				t.Errorf("DecodeJSON(%s) = malformed %v, field %+v, want %v %q %q (encoding/json said %q)",
					tt.in, je.Malformed, je.Field, tt.malformed, tt.field, tt.code, je.Err)
			}
			if tt.field != "" && je.Field.Detail == "" {
				t.Errorf("no detail in %+v", je.Field)
			}
		})
	}
}

func TestDecodeDemandeurFields(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]FieldError{
		`{"employeur": {"siret": 1}}`: {Field: "demandeur.employeur.siret", Code: "invalid_type"},
		`{"colour": "red"}`:           {Field: "demandeur.colour", Code: "unknown_field"},
		`[1]`:                         {Field: "demandeur", Code: "invalid_type"},
		`{"nom": "Dupré"} {}`:         {Field: "demandeur", Code: "invalid_json"},
	} {
		_, err := DecodeDemandeur(json.RawMessage(raw))
		var e *Error
		if !errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0].Field != want.Field || e.Fields[0].Code != want.Code {
			t.Errorf("DecodeDemandeur(%s) = %v, want %+v", raw, err, want)
		}
	}
}
