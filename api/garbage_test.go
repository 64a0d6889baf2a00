package api_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/aptflow/aptflow/internal/apptest"
)

// TestGarbageRequests: a thousand malformed, oversized, mistyped or
// mis-addressed requests, and not one 5xx.
func TestGarbageRequests(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	id, _ := s.Dossier(proc)

	rng := rand.New(rand.NewPCG(42, 7))
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"}
	// Each path with the method its route expects; a quarter of the
	// requests use a random method instead.
	paths := [][2]string{
		{"POST", "/v1/procedures"}, {"POST", fmt.Sprintf("/v1/procedures/%d/instructeurs", proc)}, {"POST", "/v1/procedures/-1/instructeurs"},
		{"POST", "/v1/dossiers"}, {"GET", fmt.Sprintf("/v1/dossiers/%d", id)}, {"PATCH", fmt.Sprintf("/v1/dossiers/%d", id)},
		{"GET", "/v1/dossiers/99999999999999999999"}, {"POST", fmt.Sprintf("/v1/dossiers/%d/events", id)},
		{"PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, inst)}, {"DELETE", fmt.Sprintf("/v1/dossiers/%d/followers/%%00%%0d%%0a", id)},
		{"POST", fmt.Sprintf("/v1/dossiers/%d/messages", id)}, {"POST", fmt.Sprintf("/v1/dossiers/%d/avis", id)},
		{"GET", fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", id)},
		{"GET", "/v1/instructeurs/" + inst + "/dossiers?tab=%ff&limit=-3&after=x"}, {"PUT", "/v1/instructeurs/%20/preferences"},
		{"PUT", "/v1/instructeurs/" + inst + "/preferences"},
		{"GET", "/attestations/" + strings.Repeat("z", 5000)}, {"GET", "/attestations/%2e%2e%2f"}, {"GET", "/v1/../etc/passwd"}, {"GET", "/healthz"},
	}
	bodies := []func() string{
		func() string { return "" },
		func() string { return "{" },
		func() string { return `{"event": "accepter", "instructeur": "` + inst + `", "motivation": 12}` },
		func() string { return `{"event": "\u0000\u202e", "instructeur": ["a"]}` },
		func() string { return `{"procedure_id": "1", "usager_email": null, "demandeur": "x"}` },
		func() string { return `{"demandeur": {"heures_hebdo": 1e999}}` },
		func() string {
			return `{"demandeur": {"date_debut": "2026-02-30", "employeur": {"siret": 73282932000074}}}`
		},
		func() string { return `{"from": "usager", "body": "` + strings.Repeat("é", 30000) + `"}` },
		func() string { return `{"notifications": "instant", "x": {"y": [[[[[[[[[[]]]]]]]]]]}}` },
		func() string {
			return `{"libelle": "x", "service": {"nom": "\r\nBcc: a@b.fr", "adresse": "a"}, "stale_after_days": -1, "heures_hebdo_max": "NaN"}`
		},
		func() string {
			b := make([]byte, rng.IntN(512))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			return string(b)
		},
	}
	contentTypes := []string{"application/json", "", "text/plain", "application/json; charset=latin1", "multipart/form-data; boundary=x"}

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	reqs := make(chan [5]string, 1000)
	for i := 0; i < 1000; i++ {
		p := paths[rng.IntN(len(paths))]
		if rng.IntN(4) == 0 {
			p[0] = methods[rng.IntN(len(methods))]
		}
		key := ""
		if rng.IntN(4) == 0 {
			key = fmt.Sprint(rng.IntN(5))
		}
		reqs <- [5]string{p[0], p[1], bodies[rng.IntN(len(bodies))](), contentTypes[rng.IntN(len(contentTypes))], key}
	}
	close(reqs)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range reqs {
				var body any
				if r[2] != "" {
					body = r[2]
				}
				headers := []string{"Content-Type", r[3], "Idempotency-Key", r[4]}
				resp := s.Do(r[0], r[1], body, headers...)
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
				if resp.StatusCode >= 500 {
					t.Errorf("%s %s (%q…) = %d: %s", r[0], r[1], trim(r[2]), resp.StatusCode, resp.Body)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("statuses: %v", statuses)
	if strings.Contains(s.Logs.String(), "panic") {
		t.Fatalf("a handler panicked:\n%s", s.Logs.String())
	}
}

func trim(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}
