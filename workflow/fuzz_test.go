package workflow

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzDemandeur: any JSON body either decodes and validates, or is refused
// with field errors; nothing panics, and every refusal names its fields.
func FuzzDemandeur(f *testing.F) {
	valid, _ := json.Marshal(validDemandeur())
	f.Add(valid)
	f.Add([]byte(`{"nom": "Dupré\u0000", "heures_hebdo": 1e308, "date_debut": "2026-02-29"}`))
	f.Add([]byte(`{"employeur": {"siret": "٣٣٣٣٣٣٣٣٣٣٣٣٣٣"}}`))
	f.Add([]byte(`{"nom": "", "Date_Fin": "2027-02-29", "titre_sejour": {"expire_le": 3, "EXPIRE_LE": "31/12/2027"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"titre_sejour": []}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := DecodeDemandeur(raw)
		if err == nil {
			err = d.Validate(20, time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
		}
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != EInvalid || len(e.Fields) == 0 {
			t.Fatalf("refusal without field errors: %v", err)
		}
		for _, f := range e.Fields {
			if f.Field == "" || f.Code == "" || f.Detail == "" {
				t.Fatalf("incomplete field error %+v", f)
			}
		}
	})
}

// FuzzApply: the machine never panics, and a success always lands in a
// state reachable by the rules.
func FuzzApply(f *testing.F) {
	f.Add("en_instruction", "accepter", "a@b.fr", "motif", true, false)
	f.Add("accepte", "refuser", "", "\x00", false, true)
	f.Fuzz(func(t *testing.T, from, event, inst, motivation string, member, quiet bool) {
		out, err := Apply(State(from), Command{Event: Event(event), Instructeur: inst, Motivation: motivation, ActorIsInstructeur: member, DisableNotification: quiet})
		if err != nil {
			if ErrorCode(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		r := rules[Event(event)]
		if out.To != r.to || State(from) != r.from || !member {
			t.Fatalf("unexpected success %+v", out)
		}
		if State(from).Decided() {
			t.Fatal("left a decided state")
		}
	})
}

// FuzzMergePatch never panics and keeps objects objects.
func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"a":1}`), []byte(`{"a":null,"b":{"c":[1]}}`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		if !json.Valid(doc) || !json.Valid(patch) {
			return
		}
		out, err := MergePatch(doc, patch)
		if err != nil {
			t.Fatalf("merge of valid JSON: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %s", out)
		}
	})
}
