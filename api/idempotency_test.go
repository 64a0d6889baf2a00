package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
)

// countRows counts the rows of a table.
func countRows(t *testing.T, s *apptest.Stack, table string) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIdempotentRequestIsAtomic: a keyed request, its key and its stored
// response commit together. When storing the response fails (a trigger
// makes it fail here, as a crash between the request's commit and the
// response's would), the request leaves nothing behind: no dossier, no key;
// the retry creates the dossier once, and the next one replays it.
func TestIdempotentRequestIsAtomic(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	body := map[string]any{"procedure_id": proc, "usager_email": "atomique@etudiant.test", "demandeur": apptest.Demandeur()}
	exec := func(sql string) {
		t.Helper()
		if _, err := s.Pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) int { t.Helper(); return countRows(t, s, table) }
	exec(`CREATE FUNCTION refuse_response() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected: response not stored'; END $$`)
	exec(`CREATE TRIGGER refuse_response BEFORE UPDATE ON idempotency_keys
		FOR EACH ROW EXECUTE FUNCTION refuse_response()`)

	if r := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "atomique"); r.StatusCode != 500 {
		t.Fatalf("response not stored: %d %s, want 500", r.StatusCode, r.Body)
	}
	if d, k := count("dossiers"), count("idempotency_keys"); d != 0 || k != 0 {
		t.Fatalf("after the failed request: %d dossiers and %d keys, want none", d, k)
	}

	exec(`DROP TRIGGER refuse_response ON idempotency_keys`)
	first := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "atomique")
	again := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "atomique")
	if first.StatusCode != 201 || again.StatusCode != 201 || again.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(first.Body, again.Body) {
		t.Fatalf("retry then replay: %d, %d %q", first.StatusCode, again.StatusCode, again.Header.Get("Idempotent-Replayed"))
	}
	if d := count("dossiers"); d != 1 {
		t.Fatalf("%d dossiers, want 1", d)
	}

	// A transition likewise, with its history row, delivery and job.
	var created struct{ ID int64 }
	if err := json.Unmarshal(first.Body, &created); err != nil {
		t.Fatal(err)
	}
	inst := s.Instructeur(proc, "Camille Martin")
	event := map[string]any{"event": "passer_en_instruction", "instructeur": inst}
	path := fmt.Sprintf("/v1/dossiers/%d/events", created.ID)
	before := [3]int{count("dossier_history"), count("email_deliveries"), count("river_job")}
	exec(`CREATE TRIGGER refuse_response BEFORE UPDATE ON idempotency_keys
		FOR EACH ROW EXECUTE FUNCTION refuse_response()`)
	if r := s.Do("POST", path, event, "Idempotency-Key", "instruction"); r.StatusCode != 500 {
		t.Fatalf("transition, response not stored: %d %s, want 500", r.StatusCode, r.Body)
	}
	if after := [3]int{count("dossier_history"), count("email_deliveries"), count("river_job")}; after != before {
		t.Fatalf("history, deliveries, jobs: %v after the failed transition, %v before", after, before)
	}
	exec(`DROP TRIGGER refuse_response ON idempotency_keys`)
	if r := s.Do("POST", path, event, "Idempotency-Key", "instruction"); r.StatusCode != 200 || r.JSON(t)["state"] != "en_instruction" {
		t.Fatalf("transition retried: %d %s", r.StatusCode, r.Body)
	}
}

// TestIdempotencyConcurrentRetries: requests with the same key at once run
// it once; the others wait for it and replay its response.
func TestIdempotencyConcurrentRetries(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	body := map[string]any{"procedure_id": proc, "usager_email": "ensemble@etudiant.test", "demandeur": apptest.Demandeur()}
	const n = 8
	resps := make([]*apptest.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { resps[i] = s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", "ensemble") })
	}
	wg.Wait()
	replayed := 0
	for i, r := range resps {
		if r.StatusCode != 201 || !bytes.Equal(r.Body, resps[0].Body) {
			t.Fatalf("request %d: %d %s", i, r.StatusCode, r.Body)
		}
		if r.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if replayed != n-1 {
		t.Errorf("%d replays, want %d", replayed, n-1)
	}
	var d int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM dossiers`).Scan(&d); err != nil || d != 1 {
		t.Fatalf("%d dossiers (%v), want 1", d, err)
	}
}

// TestIdempotentTransitionSendsItsEmail: the jobs of a keyed request,
// inserted in its transaction, run once it has committed.
func TestIdempotentTransitionSendsItsEmail(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, usager := s.Dossier(proc)
	event := map[string]any{"event": "passer_en_instruction", "instructeur": inst}
	if r := s.Do("POST", fmt.Sprintf("/v1/dossiers/%d/events", id), event, "Idempotency-Key", "instruction-mail"); r.StatusCode != 200 {
		t.Fatalf("transition: %d %s", r.StatusCode, r.Body)
	}
	if e := s.WaitDelivery(id, "en_instruction", "sent", 30*time.Second); e["to"] != usager {
		t.Fatalf("delivery %v", e)
	}
}

// TestIdempotencyKeyRefused: a key the API cannot keep is a 400 with its
// own code, before anything runs: no dossier, no key stored. A key of
// exactly 255 characters is fine.
func TestIdempotencyKeyRefused(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	body := map[string]any{"procedure_id": proc, "usager_email": "cle@etudiant.test", "demandeur": apptest.Demandeur()}
	count := func(table string) int { t.Helper(); return countRows(t, s, table) }
	for name, tc := range map[string]struct{ key, code string }{
		"TooLong":     {strings.Repeat("k", 256), "idempotency_key_too_long"},
		"InvalidUTF8": {"cl\xe9", "invalid_idempotency_key"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", tc.key)
			if r.StatusCode != 400 || r.Header.Get("Content-Type") != "application/problem+json" || r.JSON(t)["code"] != tc.code {
				t.Fatalf("%d %s %s, want 400 %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body, tc.code)
			}
			if d, k := count("dossiers"), count("idempotency_keys"); d != 0 || k != 0 {
				t.Fatalf("%d dossiers, %d keys after a refused key", d, k)
			}
		})
	}
	if r := s.Do("POST", "/v1/dossiers", body, "Idempotency-Key", strings.Repeat("k", 255)); r.StatusCode != 201 {
		t.Fatalf("255 characters: %d %s", r.StatusCode, r.Body)
	}
}
