package jobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/jobs"
	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/templates/attestation"
)

// tool returns the path of a command the test needs, failing (never
// skipping) with how to install it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: apt-get install %s (.ci/run installs it)", name, pkg)
	}
	return p
}

// accepted returns a dossier accepted by an instructeur, with its applicant.
func accepted(t *testing.T, s *apptest.Stack, motivation string) (id int64, usager, inst string) {
	t.Helper()
	proc := s.Procedure()
	inst = s.Instructeur(proc, "Camille Martin")
	id, usager = s.Dossier(proc)
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst, "disable_notification": true})
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "accepter", "instructeur": inst, "motivation": motivation})
	return id, usager, inst
}

// TestAcceptance: accepter → the PDF is rendered and stored, mailed as an
// attachment, identical to the API's, and verifiable through its QR code.
func TestAcceptance(t *testing.T) {
	t.Parallel()
	pdftotext := tool(t, "pdftotext", "poppler-utils")
	pdftoppm := tool(t, "pdftoppm", "poppler-utils")
	zbarimg := tool(t, "zbarimg", "zbar-tools")
	s := apptest.Start(t, apptest.Options{})
	id, usager, _ := accepted(t, s, "Pièces justificatives conformes.")

	e := s.WaitDelivery(id, "accepte", "sent", 30*time.Second)
	if e["to"] != usager {
		t.Fatalf("delivery %v", e)
	}
	d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil)
	att, ok := d["attestation"].(map[string]any)
	if !ok {
		t.Fatalf("no attestation in %v", d)
	}
	pdfResp := s.Do("GET", fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", id), nil)
	if pdfResp.StatusCode != 200 || pdfResp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("attestation.pdf: %d %s", pdfResp.StatusCode, pdfResp.Header.Get("Content-Type"))
	}
	pdf := pdfResp.Body
	sum := sha256.Sum256(pdf)
	if att["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("sha256 %v, PDF has %x", att["sha256"], sum)
	}
	// Stored as it is, without PostgreSQL's attempt to compress a PDF
	// (migration 00003).
	var storage string
	if err := s.Pool.QueryRow(context.Background(), `SELECT attstorage::text FROM pg_attribute
		WHERE attrelid = 'attestations'::regclass AND attname = 'pdf'`).Scan(&storage); err != nil || storage != "e" {
		t.Fatalf("attestations.pdf storage %q (%v), want e (EXTERNAL)", storage, err)
	}

	// The e-mail read back from mailpit attaches the same bytes.
	msgs := s.Mailpit.WaitFor(t, "to:"+usager, 1, 10*time.Second)
	m, err := s.Mailpit.Message(t.Context(), msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Subject, fmt.Sprint(id)) || !strings.Contains(m.Subject, "accepté") {
		t.Errorf("subject %q", m.Subject)
	}
	for _, want := range []string{"Pièces justificatives conformes.", att["verification_url"].(string)} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("e-mail lacks %q:\n%s", want, m.Text)
		}
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("attachments %+v", m.Attachments)
	}
	a := m.Attachments[0]
	if a.ContentType != "application/pdf" || a.FileName != templates.AttestationFilename(id) {
		t.Errorf("attachment %+v", a)
	}
	// The API serves the same file under the same name.
	if _, params, err := mime.ParseMediaType(pdfResp.Header.Get("Content-Disposition")); err != nil || params["filename"] != a.FileName {
		t.Errorf("attestation.pdf Content-Disposition %q, the e-mail attaches %q", pdfResp.Header.Get("Content-Disposition"), a.FileName)
	}
	mailed, err := s.Mailpit.Attachment(t.Context(), m.ID, a.PartID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mailed, pdf) {
		t.Fatalf("mailed PDF (%d bytes) differs from attestation.pdf (%d bytes)", len(mailed), len(pdf))
	}

	// What a person reads, and what the QR code says.
	dir := t.TempDir()
	file := filepath.Join(dir, "a.pdf")
	if err := os.WriteFile(file, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command(pdftotext, "-layout", file, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	for _, want := range []string{"Dupré", "Élodie", "Boulangerie Œuvre & Fils", fmt.Sprint(id), "732 829 320 00074"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("PDF text lacks %q:\n%s", want, text)
		}
	}
	if out, err := exec.Command(pdftoppm, "-png", "-r", "150", file, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	if len(pages) != 1 {
		t.Fatalf("%d pages", len(pages))
	}
	qr, err := exec.Command(zbarimg, "--quiet", "--raw", pages[0]).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if got := strings.TrimSpace(string(qr)); got != att["verification_url"] {
		t.Fatalf("QR code %q, want %q", got, att["verification_url"])
	}

	t.Run("Verification", func(t *testing.T) {
		url := att["verification_url"].(string)
		path := strings.TrimPrefix(url, s.Server.URL)
		v := s.Must(200, "GET", path, nil, "Accept", "application/json", "Authorization", "")
		// The dossier's period starts on 2026-12-01: not yet valid before,
		// valid after (the boundaries: api.TestVerification).
		okStatus := (v["status"] == "valide") == (v["valid"] == true) && (v["status"] == "valide" || v["status"] == "pas_encore_valide")
		if !okStatus || v["dossier_id"] != float64(id) || v["nom"] != "Dupré" || v["prenom"] != "Élodie" || v["sha256"] != att["sha256"] || v["decided_at"] == nil {
			t.Fatalf("verification %v", v)
		}
		page := s.Do("GET", path, nil, "Authorization", "")
		if page.StatusCode != 200 || !strings.Contains(page.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(page.Body), "alide") || !strings.Contains(string(page.Body), "Élodie Dupré") {
			t.Fatalf("page %d:\n%s", page.StatusCode, page.Body)
		}
		code := path[strings.LastIndex(path, "/")+1:]
		if len(code) < 26 { // 128 bits in base32 is 26 characters
			t.Fatalf("code %q is too short to hold 128 random bits", code)
		}
		for _, unknown := range []string{"/attestations/" + strings.Repeat("a", len(code)), "/attestations/x"} {
			if r := s.Do("GET", unknown, nil, "Accept", "application/json", "Authorization", ""); r.StatusCode != 404 {
				t.Fatalf("unknown code: %d", r.StatusCode)
			}
			if r := s.Do("GET", unknown, nil, "Authorization", ""); r.StatusCode != 404 || !strings.Contains(string(r.Body), "Code inconnu") {
				t.Fatalf("unknown code page: %d", r.StatusCode)
			}
		}
	})
}

// flakyRenderer renders, then fails the first time: as if the process died
// after rendering and before the PDF was stored with the job's completion.
type flakyRenderer struct {
	jobs.AttestationRenderer
	calls atomic.Int32
	mu    sync.Mutex
	out   [][]byte
}

func (f *flakyRenderer) Render(d attestation.Data) ([]byte, error) {
	pdf, err := f.AttestationRenderer.Render(d)
	f.mu.Lock()
	f.out = append(f.out, pdf)
	f.mu.Unlock()
	if f.calls.Add(1) == 1 {
		return nil, errors.New("simulated crash after rendering")
	}
	return pdf, err
}

func TestAttestationRetried(t *testing.T) {
	t.Parallel()
	var flaky *flakyRenderer
	s := apptest.Start(t, apptest.Options{WrapRenderer: func(r jobs.AttestationRenderer) jobs.AttestationRenderer {
		flaky = &flakyRenderer{AttestationRenderer: r}
		return flaky
	}})
	id, usager, _ := accepted(t, s, "")
	s.WaitDelivery(id, "accepte", "sent", 30*time.Second)
	waitJobsDone(t, s)
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if len(flaky.out) != 2 || !bytes.Equal(flaky.out[0], flaky.out[1]) {
		t.Fatalf("%d renders; identical: %v", len(flaky.out), len(flaky.out) == 2 && bytes.Equal(flaky.out[0], flaky.out[1]))
	}
	stored := s.Do("GET", fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", id), nil).Body
	if !bytes.Equal(stored, flaky.out[0]) {
		t.Fatal("stored PDF differs from the rendered one")
	}
	if n, _ := s.Mailpit.Count(t.Context(), "to:"+usager); n != 1 {
		t.Fatalf("%d e-mails, want 1", n)
	}

	// Run the job again by hand (as from River UI): nothing changes, no
	// second e-mail.
	if _, err := s.River.Insert(t.Context(), jobs.RenderAttestationArgs{DossierID: id, DeliveryID: deliveryID(t, s, id, "accepte")}, nil); err != nil {
		t.Fatal(err)
	}
	waitJobsDone(t, s)
	if again := s.Do("GET", fmt.Sprintf("/v1/dossiers/%d/attestation.pdf", id), nil).Body; !bytes.Equal(again, stored) {
		t.Fatal("PDF changed on a rerun")
	}
	if n, _ := s.Mailpit.Count(t.Context(), "to:"+usager); n != 1 {
		t.Fatalf("%d e-mails after a rerun, want 1", n)
	}
}

func deliveryID(t *testing.T, s *apptest.Stack, dossierID int64, kind string) int64 {
	t.Helper()
	var id int64
	if err := s.Pool.QueryRow(t.Context(), `SELECT id FROM email_deliveries WHERE dossier_id = $1 AND kind = $2`, dossierID, kind).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDecisions: refuser mails the motivation; classer_sans_suite mails
// nothing; accepter without notification renders but mails nothing.
func TestDecisions(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	instruct := func() (int64, string) {
		id, usager := s.Dossier(proc)
		s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst, "disable_notification": true})
		return id, usager
	}
	refused, refusedUsager := instruct()
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", refused), map[string]any{"event": "refuser", "instructeur": inst, "motivation": "Le contrat dépasse 964 heures par an."})
	closed, closedUsager := instruct()
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", closed), map[string]any{"event": "classer_sans_suite", "instructeur": inst, "motivation": "Demande en double."})
	quiet, quietUsager := instruct()
	s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", quiet), map[string]any{"event": "accepter", "instructeur": inst, "disable_notification": true})

	got := s.Mailpit.WaitFor(t, "to:"+refusedUsager, 1, 20*time.Second)
	m, _ := s.Mailpit.Message(t.Context(), got[0].ID)
	if !strings.Contains(m.Subject, "refusé") || !strings.Contains(m.Subject, fmt.Sprint(refused)) || !strings.Contains(m.Text, "Le contrat dépasse 964 heures par an.") {
		t.Fatalf("refusal %q:\n%s", m.Subject, m.Text)
	}
	waitJobsDone(t, s)
	for _, u := range []string{closedUsager, quietUsager} {
		if n, _ := s.Mailpit.Count(t.Context(), "to:"+u); n != 0 {
			t.Errorf("%d e-mails to %s", n, u)
		}
	}
	if d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", quiet), nil); d["attestation"] == nil {
		t.Error("no attestation when the notification is disabled")
	}
}

// TestDecisionsAreFinal: after a decision every event is 409, the applicant
// cannot edit, and the database itself refuses a change of state, of the
// decision's date and motivation, and of the demandeur.
func TestDecisionsAreFinal(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	inst := s.Instructeur(proc, "Camille Martin")
	for _, decision := range []string{"accepter", "refuser", "classer_sans_suite"} {
		t.Run(decision, func(t *testing.T) {
			id, _ := s.Dossier(proc)
			s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": inst})
			s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": decision, "instructeur": inst, "motivation": "Motif."})
			for _, ev := range []string{"passer_en_instruction", "repasser_en_construction", "accepter", "refuser", "classer_sans_suite"} {
				if r := s.Event(id, ev, inst, "Motif."); r.StatusCode != 409 || r.JSON(t)["code"] != "invalid_transition" {
					t.Errorf("%s after %s: %d %s", ev, decision, r.StatusCode, r.Body)
				}
			}
			if r := s.Do("PATCH", fmt.Sprintf("/v1/dossiers/%d", id), map[string]any{"demandeur": map[string]any{"emploi": "x"}}); r.StatusCode != 409 || r.JSON(t)["code"] != "not_editable" {
				t.Errorf("PATCH: %d %s", r.StatusCode, r.Body)
			}
			for _, to := range []string{"en_construction", "en_instruction", "accepte", "refuse", "sans_suite"} {
				_, err := s.Pool.Exec(t.Context(), `UPDATE dossiers SET state = $2 WHERE id = $1 AND state <> $2`, id, to)
				if to != decidedState(decision) && (err == nil || !strings.Contains(err.Error(), "cannot change")) {
					t.Errorf("SQL update to %s: %v", to, err)
				}
			}
			// What the verification page and the attestation show is
			// final too: the decision's date and motivation, the demandeur.
			for name, set := range map[string]string{
				"decided_at": `decided_at = decided_at - interval '1 day'`,
				"motivation": `motivation = 'Autre motif.'`,
				"demandeur":  `demandeur = jsonb_set(demandeur, '{nom}', '"Usurpé"')`,
				"null":       `motivation = NULL`,
			} {
				if _, err := s.Pool.Exec(t.Context(), `UPDATE dossiers SET `+set+` WHERE id = $1`, id); err == nil || !strings.Contains(err.Error(), "cannot change") {
					t.Errorf("SQL update of %s: %v", name, err)
				}
			}
			// What stays open: the applicant's messages, the stale flag.
			if _, err := s.Pool.Exec(t.Context(), `UPDATE dossiers SET last_activity_at = now(), stale_since = NULL, updated_at = now() WHERE id = $1`, id); err != nil {
				t.Errorf("activity on a decided dossier: %v", err)
			}
			// The RGPD purge says so in its transaction.
			tx, err := s.Pool.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(t.Context())
			if _, err := tx.Exec(t.Context(), `SET LOCAL aptflow.purge = 'on'`); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(t.Context(), `UPDATE dossiers SET demandeur = '{}', motivation = NULL WHERE id = $1`, id); err != nil {
				t.Errorf("the purge's erasure: %v", err)
			}
		})
	}
}

func decidedState(event string) string {
	return map[string]string{"accepter": "accepte", "refuser": "refuse", "classer_sans_suite": "sans_suite"}[event]
}

// TestAccepterRefuserRace: accepter and refuser at once; exactly one wins.
func TestAccepterRefuserRace(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	proc := s.Procedure()
	a := s.Instructeur(proc, "Camille Martin")
	b := s.Instructeur(proc, "Dominique Petit")
	for i := 0; i < 10; i++ {
		id, _ := s.Dossier(proc)
		s.Must(200, "POST", fmt.Sprintf("/v1/dossiers/%d/events", id), map[string]any{"event": "passer_en_instruction", "instructeur": a})
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for j, ev := range []struct{ event, who string }{{"accepter", a}, {"refuser", b}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[j] = s.Event(id, ev.event, ev.who, "Motif.").StatusCode
			}()
		}
		wg.Wait()
		if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
			t.Fatalf("round %d: statuses %v", i, codes)
		}
		d := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil)
		if n := len(d["history"].([]any)); n != 2 {
			t.Fatalf("round %d: %d history rows", i, n)
		}
	}
}
