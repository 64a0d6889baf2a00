package jobs_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

// The purge tests run on the stale tests' clock (staleSetup): dossiers are
// created at t0, and the purge runs as of the times the test chooses.

// notice is RETENTION_NOTICE's default: the stack's Service uses it.
const notice = workflow.DefaultRetentionNotice

func purgeAt(t *testing.T, s *apptest.Stack, at time.Time) jobs.PurgeResult {
	t.Helper()
	res, err := jobs.Purge(t.Context(), s.Service, s.River, s.Jobs, at)
	if err != nil {
		t.Fatalf("purge as of %s: %v", at, err)
	}
	return res
}

// expiresAt is the dossier's expires_at as the API shows it (nil: null).
func expiresAt(t *testing.T, s *apptest.Stack, id int64) *time.Time {
	t.Helper()
	v, _ := dossier(t, s, id)["expires_at"].(string)
	if v == "" {
		return nil
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatal(err)
	}
	return &at
}

// tab lists the ids of an instructeur's tab, on the Service's clock.
func tab(t *testing.T, s *apptest.Stack, inst, name string) []int64 {
	t.Helper()
	list := s.Must(200, "GET", "/v1/instructeurs/"+inst+"/dossiers?tab="+name, nil)["dossiers"].([]any)
	ids := make([]int64, len(list))
	for i, d := range list {
		ids[i] = int64(d.(map[string]any)["id"].(float64))
	}
	return ids
}

func has(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// TestPurgeNotice: RETENTION_NOTICE before its expiry, and not a
// microsecond earlier, the applicant is told once that the dossier will be
// deleted, on which day; the dossier is in the tab expirant from then on.
func TestPurgeNotice(t *testing.T) {
	t.Parallel()
	s, c, proc, inst := staleSetup(t)
	id, usager := s.Dossier(proc)
	exp := expiresAt(t, s, id)
	// Created on 1 September 2026 at noon in Paris, kept 12 months.
	if want := time.Date(2027, 9, 1, 12, 0, 0, 0, workflow.Paris()); exp == nil || !exp.Equal(want) {
		t.Fatalf("expires_at = %v, want %v", exp, want)
	}
	due := exp.Add(-notice)

	t.Run("NotBefore", func(t *testing.T) {
		if res := purgeAt(t, s, due.Add(-time.Microsecond)); res.Notices != 0 || res.Purged != 0 {
			t.Fatalf("purge just before the notice is due: %+v", res)
		}
		c.Set(due.Add(-time.Second))
		if has(tab(t, s, inst, workflow.TabExpirant), id) {
			t.Error("in the tab expirant before the notice is due")
		}
	})
	t.Run("OnTheDay", func(t *testing.T) {
		if res := purgeAt(t, s, due); res.Notices != 1 || res.Purged != 0 {
			t.Fatalf("purge when the notice is due: %+v", res)
		}
		msgs := s.Mailpit.WaitFor(t, "to:"+usager+` subject:"sera supprimé"`, 1, 20*time.Second)
		want := fmt.Sprintf("Votre dossier nº %d sera supprimé le %s", id, templates.DateFR(workflow.DateOf(*exp, workflow.Paris())))
		if msgs[0].Subject != want || !strings.Contains(want, "1er septembre 2027") {
			t.Errorf("subject %q, want %q (1er septembre 2027)", msgs[0].Subject, want)
		}
		c.Set(due)
		if !has(tab(t, s, inst, workflow.TabExpirant), id) {
			t.Error("not in the tab expirant once the notice is due")
		}
	})
	t.Run("Once", func(t *testing.T) {
		for _, at := range []time.Time{due, due.Add(day), exp.Add(-time.Microsecond)} {
			if res := purgeAt(t, s, at); res.Notices != 0 || res.Purged != 0 {
				t.Fatalf("purge as of %s: %+v", at, res)
			}
		}
		waitJobsDone(t, s)
		if n := deliveries(t, s, workflow.MailExpirationUsager); n != 1 {
			t.Fatalf("%d notices, want 1", n)
		}
		if n, err := s.Mailpit.Count(t.Context(), "to:"+usager); err != nil || n != 1 {
			t.Fatalf("%d e-mails to the applicant (%v), want 1", n, err)
		}
	})
}

// TestExtendConservation: an instructeur's extension moves the expiry by
// its months (history row), the new expiry is announced in turn, and the
// dossier is purged on the new day only.
func TestExtendConservation(t *testing.T) {
	t.Parallel()
	s, c, proc, inst := staleSetup(t)
	id, _ := s.Dossier(proc)
	exp := *expiresAt(t, s, id)
	path := fmt.Sprintf("/v1/dossiers/%d/conservation", id)
	if res := purgeAt(t, s, exp.Add(-notice)); res.Notices != 1 {
		t.Fatalf("first notice: %+v", res)
	}

	t.Run("Invalid", func(t *testing.T) {
		p := s.Must(422, "POST", path, map[string]any{"instructeur": "pas une adresse", "mois": 0})
		if errs := p["errors"].([]any); len(errs) != 2 {
			t.Errorf("errors %v, want one per bad field (instructeur, mois)", errs)
		}
		other := s.Instructeur(s.Procedure(), "Autre Procédure")
		if p := s.Must(403, "POST", path, map[string]any{"instructeur": other, "mois": 1}); p["code"] != workflow.ENotInstructeur {
			t.Errorf("an instructeur of another procedure: %v", p)
		}
		if got := expiresAt(t, s, id); !got.Equal(exp) {
			t.Errorf("refused extensions moved expires_at to %v", got)
		}
	})
	t.Run("OK", func(t *testing.T) {
		c.Set(exp.Add(-2 * day))
		d := s.Must(200, "POST", path, map[string]any{"instructeur": inst, "mois": 1})
		want := time.Date(2027, 10, 1, 12, 0, 0, 0, workflow.Paris())
		if got := expiresAt(t, s, id); got == nil || !got.Equal(want) || d["expires_at"] == nil {
			t.Fatalf("expires_at = %v, want a month later, %v", got, want)
		}
		h := d["history"].([]any)
		last := h[len(h)-1].(map[string]any)
		if last["event"] != workflow.EventProlongerConservation || last["instructeur"] != inst || last["from"] != "en_construction" || last["to"] != "en_construction" {
			t.Errorf("history row %v", last)
		}
	})
	t.Run("PurgedOnTheNewDay", func(t *testing.T) {
		newExp := *expiresAt(t, s, id)
		if res := purgeAt(t, s, exp); res.Purged != 0 {
			t.Fatalf("purge on the old day: %+v", res)
		}
		purgeAt(t, s, newExp.Add(-notice))
		if res := purgeAt(t, s, newExp.Add(-notice/2)); res.Notices != 0 {
			t.Fatalf("the new expiry announced twice: %+v", res)
		}
		if n := deliveries(t, s, workflow.MailExpirationUsager); n != 2 {
			t.Fatalf("%d notices, want one for each expiry", n)
		}
		if res := purgeAt(t, s, newExp.Add(-time.Microsecond)); res.Purged != 0 {
			t.Fatalf("purged before the new day: %+v", res)
		}
		if res := purgeAt(t, s, newExp); res.Purged != 1 {
			t.Fatalf("purge on the new day: %+v", res)
		}
		if p := s.Must(410, "POST", path, map[string]any{"instructeur": inst, "mois": 1}); p["code"] != workflow.EDossierSupprime {
			t.Errorf("extension of a purged dossier: %v", p)
		}
	})
}

// TestPurgeDay: a dossier en construction is purged conservation_mois after
// its applicant's last activity, a decided one after its decision, not a
// microsecond earlier; one en instruction never. The API then answers 410
// with the tombstone, which dossiers_supprimes lists; a second purge
// changes nothing.
func TestPurgeDay(t *testing.T) {
	t.Parallel()
	s, c, proc, inst := staleSetup(t)
	construction, _ := s.Dossier(proc)
	instruction, _ := s.Dossier(proc)
	decided, _ := s.Dossier(proc)
	if r := s.Event(instruction, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
		t.Fatalf("event: %d %s", r.StatusCode, r.Body)
	}
	decidedAt := t0.Add(60 * day)
	c.Set(decidedAt)
	for _, ev := range []string{"passer_en_instruction", "refuser"} {
		if r := s.Event(decided, ev, inst, "Pièces manquantes."); r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", ev, r.StatusCode, r.Body)
		}
	}
	waitJobsDone(t, s)
	exp := *expiresAt(t, s, construction)
	if got := expiresAt(t, s, decided); got == nil || !got.Equal(decidedAt.AddDate(1, 0, 0)) {
		t.Fatalf("decided dossier: expires_at %v, want a year after its decision %v", got, decidedAt)
	}
	if got := expiresAt(t, s, instruction); got != nil {
		t.Fatalf("dossier en instruction: expires_at %v, want null", got)
	}

	t.Run("NotBefore", func(t *testing.T) {
		if res := purgeAt(t, s, exp.Add(-time.Microsecond)); res.Purged != 0 {
			t.Fatalf("purge a microsecond early: %+v", res)
		}
		dossier(t, s, construction)
	})
	deletedAt := exp.Add(3 * time.Hour)
	t.Run("OnTheDay", func(t *testing.T) {
		c.Set(deletedAt) // the time the purge stamps on its tombstones
		if res := purgeAt(t, s, exp); res.Purged != 1 {
			t.Fatalf("purge on the day: %+v", res)
		}
		p := s.Must(410, "GET", fmt.Sprintf("/v1/dossiers/%d", construction), nil)
		want := map[string]any{"code": "dossier_supprime", "status": float64(410), "id": float64(construction), "procedure_id": float64(proc),
			"state": "en_construction", "decided_at": nil, "reason": "expire"}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("410 problem: %s = %v, want %v (%v)", k, p[k], v, p)
			}
		}
		if got, err := time.Parse(time.RFC3339Nano, fmt.Sprint(p["deleted_at"])); err != nil || !got.Equal(deletedAt) {
			t.Errorf("deleted_at %v, want %v", p["deleted_at"], deletedAt)
		}
		for _, r := range []struct{ method, path string }{
			{"PATCH", fmt.Sprintf("/v1/dossiers/%d", construction)},
			{"POST", fmt.Sprintf("/v1/dossiers/%d/messages", construction)},
			{"POST", fmt.Sprintf("/v1/dossiers/%d/avis", construction)},
			{"POST", fmt.Sprintf("/v1/dossiers/%d/events", construction)},
			{"PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", construction, inst)},
			{"DELETE", fmt.Sprintf("/v1/dossiers/%d/followers/%s", construction, inst)},
			{"GET", fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", construction)},
		} {
			var body any
			switch {
			case r.method == "PATCH":
				body = map[string]any{"demandeur": map[string]any{"emploi": "serveuse"}}
			case strings.HasSuffix(r.path, "/messages"):
				body = map[string]any{"from": "usager", "body": "Bonjour"}
			case strings.HasSuffix(r.path, "/avis"):
				body = map[string]any{"expert": "expert@direccte.test", "body": "Favorable"}
			case strings.HasSuffix(r.path, "/events"):
				body = map[string]any{"event": "passer_en_instruction", "instructeur": inst}
			}
			if resp := s.Do(r.method, r.path, body); resp.StatusCode != 410 || !strings.Contains(string(resp.Body), `"dossier_supprime"`) {
				t.Errorf("%s %s on a purged dossier: %d %s", r.method, r.path, resp.StatusCode, resp.Body)
			}
		}
		dossier(t, s, decided)
		if has(tab(t, s, inst, workflow.TabTous), construction) {
			t.Error("a purged dossier is in the tab tous")
		}
	})
	later := t0.AddDate(10, 0, 0)
	t.Run("DecidedAndNeverInInstruction", func(t *testing.T) {
		if res := purgeAt(t, s, decidedAt.AddDate(1, 0, 0).Add(-time.Microsecond)); res.Purged != 0 {
			t.Fatalf("decided dossier purged before a year after its decision: %+v", res)
		}
		c.Set(later)
		if res := purgeAt(t, s, later); res.Purged != 1 {
			t.Fatalf("purge ten years on: %+v", res)
		}
		s.Must(410, "GET", fmt.Sprintf("/v1/dossiers/%d", decided), nil)
		if d := dossier(t, s, instruction); d["state"] != "en_instruction" || d["demandeur"].(map[string]any)["nom"] != "Dupré" {
			t.Errorf("the dossier en instruction changed: %v", d)
		}
	})
	t.Run("DossiersSupprimes", func(t *testing.T) {
		list := func(query string) map[string]any {
			return s.Must(200, "GET", fmt.Sprintf("/v1/procedures/%d/dossiers_supprimes%s", proc, query), nil)
		}
		ids := func(m map[string]any) []int64 {
			var ids []int64
			for _, d := range m["dossiers_supprimes"].([]any) {
				ids = append(ids, int64(d.(map[string]any)["id"].(float64)))
			}
			return ids
		}
		if got := ids(list("")); fmt.Sprint(got) != fmt.Sprint([]int64{construction, decided}) {
			t.Errorf("all tombstones: %v, want %d then %d", got, construction, decided)
		}
		if got := ids(list("?since=" + later.Format(time.RFC3339))); fmt.Sprint(got) != fmt.Sprint([]int64{decided}) {
			t.Errorf("since the second purge: %v", got)
		}
		first := list("?limit=1")
		if got := ids(first); fmt.Sprint(got) != fmt.Sprint([]int64{construction}) || first["next_after"] != float64(construction) {
			t.Fatalf("first page: %v", first)
		}
		next := list(fmt.Sprintf("?limit=1&since=%s&after=%d", url.QueryEscape(first["next_since"].(string)), construction))
		if got := ids(next); fmt.Sprint(got) != fmt.Sprint([]int64{decided}) {
			t.Errorf("second page: %v", next)
		}
		p := s.Must(422, "GET", fmt.Sprintf("/v1/procedures/%d/dossiers_supprimes?since=hier&limit=0", proc), nil)
		if errs := p["errors"].([]any); len(errs) != 2 {
			t.Errorf("errors %v, want since and limit", errs)
		}
		s.Must(404, "GET", "/v1/procedures/999999/dossiers_supprimes", nil)
	})
	t.Run("Twice", func(t *testing.T) {
		waitJobsDone(t, s)
		before := lifecycleSnapshot(t, s)
		if res := purgeAt(t, s, later); res != (jobs.PurgeResult{At: res.At}) {
			t.Fatalf("second purge: %+v", res)
		}
		if after := lifecycleSnapshot(t, s); after != before {
			t.Errorf("the second purge changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// lifecycleSnapshot describes every table's rows, except River's
// bookkeeping of its running clients (leader, queues' heartbeats), which
// moves by itself.
func lifecycleSnapshot(t *testing.T, s *apptest.Stack) string {
	t.Helper()
	var b strings.Builder
	for name, rows := range dumpTables(t, s) {
		if name == "river_leader" || name == "river_queue" || name == "river_client" || name == "river_client_queue" {
			continue
		}
		fmt.Fprintf(&b, "%s %x\n", name, sha256.Sum256([]byte(rows)))
	}
	lines := strings.Split(b.String(), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// dumpTables returns the text of every row of every table of the
// database, aptflow's and River's, by table.
func dumpTables(t *testing.T, s *apptest.Stack) map[string]string {
	t.Helper()
	ctx := t.Context()
	rows, _ := s.Pool.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	dump := map[string]string{}
	for _, name := range tables {
		var text string
		if err := s.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '') FROM `+
			pgx.Identifier{name}.Sanitize()+` t`).Scan(&text); err != nil {
			t.Fatalf("dump %s: %v", name, err)
		}
		dump[name] = text
	}
	return dump
}

// findIn returns the tables whose rows hold needle, as text or, in a bytea
// column (stored responses, PDFs), as the hex of its UTF-8.
func findIn(dump map[string]string, needle string) []string {
	var found []string
	hexed := hex.EncodeToString([]byte(needle))
	for name, text := range dump {
		if strings.Contains(text, needle) || strings.Contains(text, hexed) {
			found = append(found, name)
		}
	}
	return found
}

// TestPurgeErasesPersonalData: a dossier that went through everything
// (messages both ways, an avis, follows, notifications, a decision with
// its motivation, its attestation and e-mails, the expiry notice, stored
// idempotent responses) and is then purged leaves none of its applicant's
// unique strings in any row of any table, River's included, nor in the
// logs; only the tombstone, and the attestation's verification saying
// « supprimée ». Another applicant's dossier, which has not expired, keeps
// everything.
func TestPurgeErasesPersonalData(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	// Idempotency keys are stamped by the database's clock, far behind
	// the test's: a TTL of ten years keeps them until the dossier's purge,
	// which must erase its stored responses itself.
	s := apptest.Start(t, apptest.Options{Now: c.Now, Jobs: jobs.Config{IdempotencyTTL: 10 * 365 * day}})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	tag := func() string {
		b := make([]byte, 5)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}

	// applicant creates a dossier full of strings of their own, keyed.
	type applicant struct {
		id      int64
		needles []string
	}
	create := func() applicant {
		x := tag()
		dem := apptest.Demandeur()
		a := applicant{needles: []string{"Quatremare" + x, "Zéphyrine" + x, "Tromsø " + x, "groenlandaise " + x, "TS" + x,
			"Lycée Hélène " + x, "Forge Ærø " + x, "7 impasse " + x, "soudeuse " + x, "usager-" + x + "@etudiant.test"}}
		dem["nom"], dem["prenom"], dem["lieu_naissance"], dem["nationalite"] = a.needles[0], a.needles[1], a.needles[2], a.needles[3]
		dem["titre_sejour"].(map[string]any)["numero"] = a.needles[4]
		dem["etablissement"] = a.needles[5]
		dem["employeur"].(map[string]any)["raison_sociale"], dem["employeur"].(map[string]any)["adresse"] = a.needles[6], a.needles[7]
		dem["emploi"] = a.needles[8]
		d := s.Must(201, "POST", "/v1/dossiers", map[string]any{"procedure_id": proc, "usager_email": a.needles[9], "demandeur": dem},
			"Idempotency-Key", "create-"+x)
		a.id = int64(d["id"].(float64))
		return a
	}
	target := create()
	x := tag()
	messages := []string{"Message de l'usager " + x, "Avis de l'expert " + x, "expert-" + x + "@direccte.test",
		"Réponse de l'instructeur " + x, "Motivation de l'acceptation " + x, "Modifié " + x}
	target.needles = append(target.needles, messages...)
	path := fmt.Sprintf("/v1/dossiers/%d", target.id)
	s.Must(204, "PUT", path+"/followers/"+inst, nil)
	s.Must(200, "PATCH", path, map[string]any{"demandeur": map[string]any{"employeur": map[string]any{"adresse": messages[5]}}})
	s.Must(201, "POST", path+"/messages", map[string]any{"from": "usager", "body": messages[0]}, "Idempotency-Key", "message-"+x)
	s.Must(201, "POST", path+"/avis", map[string]any{"expert": messages[2], "body": messages[1]})
	if r := s.Event(target.id, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
		t.Fatalf("event: %d %s", r.StatusCode, r.Body)
	}
	s.Must(201, "POST", path+"/messages", map[string]any{"from": inst, "body": messages[3]})
	s.Must(200, "POST", path+"/events", map[string]any{"event": "accepter", "instructeur": inst, "motivation": messages[4]},
		"Idempotency-Key", "accept-"+x)
	waitJobsDone(t, s)
	c.Set(t0.Add(60 * day))
	other := create()
	d := dossier(t, s, target.id)
	att, _ := d["attestation"].(map[string]any)
	if att == nil {
		t.Fatalf("no attestation: %v", d)
	}
	code := att["verification_url"].(string)[strings.LastIndex(att["verification_url"].(string), "/")+1:]
	exp := *expiresAt(t, s, target.id)
	if res := purgeAt(t, s, exp.Add(-notice)); res.Notices != 1 {
		t.Fatalf("notice: %+v", res)
	}
	waitJobsDone(t, s)
	// The notice links to the attestation's verification page.
	notices := s.Mailpit.WaitFor(t, "to:"+target.needles[9]+` subject:"sera supprimé"`, 1, 20*time.Second)
	if m, err := s.Mailpit.Message(t.Context(), notices[0].ID); err != nil || !strings.Contains(m.Text, "/attestations/"+code) {
		t.Errorf("the notice does not link to the verification page (%v):\n%v", err, m)
	}

	before := dumpTables(t, s)
	for _, a := range []applicant{target, other} {
		for _, n := range a.needles {
			if len(findIn(before, n)) == 0 {
				t.Fatalf("%q is nowhere before the purge: the search would prove nothing", n)
			}
		}
	}
	if res := purgeAt(t, s, exp); res.Purged != 1 {
		t.Fatalf("purge: %+v", res)
	}
	waitJobsDone(t, s)
	after := dumpTables(t, s)
	for _, n := range target.needles {
		if found := findIn(after, n); len(found) > 0 {
			t.Errorf("%q is still in %v after the purge", n, found)
		}
		if strings.Contains(s.Logs.String(), n) {
			t.Errorf("%q is in the logs", n)
		}
	}
	var pdf, sha *string
	if err := s.Pool.QueryRow(t.Context(), `SELECT encode(pdf, 'hex'), sha256 FROM attestations WHERE dossier_id = $1`, target.id).Scan(&pdf, &sha); err != nil || pdf != nil || sha != nil {
		t.Errorf("attestation after the purge: pdf %v, sha256 %v (%v)", pdf != nil, sha, err)
	}

	t.Run("Verification", func(t *testing.T) {
		get := func(accept string) (int, string) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", s.Server.URL+"/attestations/"+code, nil)
			req.Header.Set("Accept", accept)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		status, body := get("application/json")
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil || status != 200 || len(v) != 3 ||
			v["status"] != "supprimee" || v["valid"] != false || v["dossier_id"] != float64(target.id) {
			t.Errorf("JSON: %d %s, want status supprimee, valid false and the dossier's id only", status, body)
		}
		status, body = get("text/html")
		if status != 200 || !strings.Contains(body, "Dossier supprimé") {
			t.Errorf("HTML: %d %s", status, body)
		}
		for _, n := range target.needles {
			if strings.Contains(body, n) {
				t.Errorf("the page shows %q", n)
			}
		}
	})
	t.Run("OtherDossierKept", func(t *testing.T) {
		dossier(t, s, other.id)
		for _, n := range other.needles {
			if len(findIn(after, n)) == 0 {
				t.Errorf("the other dossier lost %q", n)
			}
		}
	})
}

// TestPurgeResumes: a purge killed half-way through its notices, then
// half-way through its tombstones, has committed its batches; run again,
// it does the rest: every applicant told once, every dossier purged once.
func TestPurgeResumes(t *testing.T) {
	t.Parallel()
	s, _, proc, _ := staleSetup(t)
	const n = 25
	for range n {
		s.Dossier(proc)
	}
	var id int64
	if err := s.Pool.QueryRow(t.Context(), `SELECT max(id) FROM dossiers`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	exp := *expiresAt(t, s, id)
	run := func(at time.Time, crashAfter int) (jobs.PurgeResult, error) {
		return jobs.PurgeBatched(t.Context(), s.Service, s.River, s.Jobs, at, 10, crashAfter)
	}
	// Batches: one of idempotency keys, then the notices', then the
	// purge's.
	res, err := run(exp.Add(-notice), 2)
	if !errors.Is(err, jobs.ErrCrash) || res.Notices != 10 {
		t.Fatalf("crashed in the notices: %+v, %v", res, err)
	}
	if res, err = run(exp.Add(-notice), 0); err != nil || res.Notices != n-10 {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
	if got := deliveries(t, s, workflow.MailExpirationUsager); got != n {
		t.Fatalf("%d notices, want %d", got, n)
	}
	if res, err = run(exp, 3); !errors.Is(err, jobs.ErrCrash) || res.Purged != 10 {
		t.Fatalf("crashed in the purge: %+v, %v", res, err)
	}
	if res, err = run(exp, 0); err != nil || res.Purged != n-10 || res.Notices != 0 {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
	if res, err = run(exp, 0); err != nil || res.Purged != 0 {
		t.Fatalf("third run: %+v, %v", res, err)
	}
	var tombstones int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM dossiers WHERE deleted_at IS NOT NULL AND demandeur = '{}'`).Scan(&tombstones); err != nil || tombstones != n {
		t.Fatalf("%d tombstones (%v), want %d", tombstones, err, n)
	}
	if got := deliveries(t, s, workflow.MailExpirationUsager); got != 0 {
		t.Errorf("%d notices left after the purge of their dossiers", got)
	}
}

// TestIdempotencyTTL: the purge forgets the idempotency keys older than
// IDEMPOTENCY_TTL, with their stored responses: the same key then runs its
// request again.
func TestIdempotencyTTL(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Jobs: jobs.Config{IdempotencyTTL: time.Hour}})
	body := map[string]any{"libelle": "APT", "service": map[string]any{"nom": "Préfecture de l'Ain", "adresse": "Bourg"},
		"stale_after_days": 30, "heures_hebdo_max": 20}
	first := s.Must(201, "POST", "/v1/procedures", body, "Idempotency-Key", "ttl")
	if r := s.Do("POST", "/v1/procedures", body, "Idempotency-Key", "ttl"); r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("not replayed: %d %s", r.StatusCode, r.Body)
	}
	// Keys are stamped by the database's clock.
	var created time.Time
	if err := s.Pool.QueryRow(t.Context(), `SELECT created_at FROM idempotency_keys WHERE key = 'ttl'`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if res := purgeAt(t, s, created.Add(time.Hour)); res.IdempotencyKeys != 0 {
		t.Fatalf("forgotten at the TTL: %+v", res)
	}
	if res := purgeAt(t, s, created.Add(time.Hour+time.Microsecond)); res.IdempotencyKeys != 1 {
		t.Fatalf("not forgotten after the TTL: %+v", res)
	}
	again := s.Must(201, "POST", "/v1/procedures", body, "Idempotency-Key", "ttl")
	if again["id"] == first["id"] {
		t.Errorf("the forgotten key replayed: %v", again)
	}
}

// TestPurgeWorker: the purge job runs the purge as of its run time and
// completes; a purge out of time stops between two batches, its work so
// far committed, for the job to snooze and resume.
func TestPurgeWorker(t *testing.T) {
	t.Parallel()
	s, _, proc, _ := staleSetup(t)
	id, _ := s.Dossier(proc)
	exp := *expiresAt(t, s, id)

	if res, err := jobs.PurgeStoppingBy(t.Context(), s.Service, s.River, s.Jobs, exp, time.Now().Add(-time.Second)); !errors.Is(err, jobs.ErrPurgePaused) || res.Purged != 0 {
		t.Fatalf("purge out of time: %+v, %v", res, err)
	}
	dossier(t, s, id)

	w := rivertest.NewWorker(t, riverpgxv5.New(nil), &river.Config{}, jobs.NewPurgeWorker(s.Jobs, jobs.Deps{Service: s.Service, Pool: s.Pool}))
	tx, err := s.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context()) //nolint:errcheck // the job's row only
	res, err := w.Work(t.Context(), t, tx, jobs.PurgeArgs{At: exp}, nil)
	if err != nil || res.EventKind != river.EventKindJobCompleted {
		t.Fatalf("purge job: %+v, %v", res, err)
	}
	s.Must(410, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil)
	if !strings.Contains(s.Logs.String(), `"msg":"purge done"`) || !strings.Contains(s.Logs.String(), `"purged":1`) {
		t.Errorf("the purge's log line is missing:\n%s", s.Logs.String())
	}
}
