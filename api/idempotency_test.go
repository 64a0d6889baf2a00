package api_test

import (
	"crypto/sha256"
	"encoding/json"
	"testing"

	"github.com/aptflow/aptflow/internal/apptest"
)

// TestIdempotencyKeyAbandoned: a key claimed by a request that never
// answered (its process killed, the database gone before the claim was
// released) is in use for a while, then free again, not stuck forever.
func TestIdempotencyKeyAbandoned(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	body := map[string]any{"procedure_id": proc, "usager_email": "reprise@etudiant.test", "demandeur": apptest.Demandeur()}
	// The claim of this very request, as the middleware makes it.
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(append([]byte("POST /v1/dossiers\n"), b...))
	for key, age := range map[string]string{"abandoned": "1 hour", "running": "1 second"} {
		if _, err := s.Pool.Exec(t.Context(), `
			INSERT INTO idempotency_keys (token_id, key, request_hash, created_at)
			SELECT id, $1, $2, now() - $3::interval FROM api_tokens`, key, hash[:], age); err != nil {
			t.Fatal(err)
		}
	}
	if r := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "running"); r.StatusCode != 409 || r.JSON(t)["code"] != "idempotency_key_in_use" {
		t.Fatalf("a claim in progress: %d %s", r.StatusCode, r.Body)
	}
	first := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "abandoned")
	if first.StatusCode != 201 {
		t.Fatalf("an abandoned claim: %d %s", first.StatusCode, first.Body)
	}
	if again := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "abandoned"); again.StatusCode != 201 || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after the takeover: %d %s", again.StatusCode, again.Body)
	}
}
