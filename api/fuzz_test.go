package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aptflow/aptflow/workflow"
)

// FuzzDecode: any body either decodes or is refused with a typed error of
// the HTTP layer (never a panic, never an untyped error that would be a 500).
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"event": "accepter", "instructeur": "a@b.fr", "motivation": "ok", "disable_notification": true}`,
		`{"procedure_id": 1, "usager_email": "x@y.fr", "demandeur": {"nom": "Dupré"}}`,
		`{"event": 3}`, `[]`, `null`, `{"a": 1}`, `{"motivation": "\ud800"}`, "\xff\xfe", `{} {}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{
			&struct {
				Event               workflow.Event `json:"event"`
				Instructeur         string         `json:"instructeur"`
				Motivation          string         `json:"motivation"`
				DisableNotification bool           `json:"disable_notification"`
			}{},
			&workflow.DossierInput{},
			&workflow.ProcedureInput{},
		}
		for _, v := range targets {
			err := decodeBytes(body, v)
			if err == nil {
				if !json.Valid(body) {
					t.Fatalf("invalid JSON accepted: %q", body)
				}
				continue
			}
			var he *httpError
			if !errors.As(err, &he) || statusOf(he.code) >= 500 {
				t.Fatalf("decode %q: %v is not a 4xx error", body, err)
			}
		}
	})
}
