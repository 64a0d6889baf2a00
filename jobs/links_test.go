package jobs_test

import (
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/apptest"
	"github.com/aptflow/aptflow/internal/mailpittest"
	"github.com/aptflow/aptflow/jobs"
)

// received waits for the one e-mail matching query and returns it whole,
// with its raw header.
func received(t *testing.T, s *apptest.Stack, query string) (*mailpittest.Message, mail.Header) {
	t.Helper()
	msgs := s.Mailpit.WaitFor(t, query, 1, 20*time.Second)
	m, err := s.Mailpit.Message(t.Context(), msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Mailpit.Raw(t.Context(), msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	m.Text = strings.ReplaceAll(m.Text, "\r\n", "\n")
	// The shape of a transactional message: automatic (no vacation reply),
	// not a list (nothing to unsubscribe from).
	h := parsed.Header
	if h.Get("Auto-Submitted") != "auto-generated" || h.Get("List-Unsubscribe") != "" || h.Get("Precedence") != "" {
		t.Errorf("%s: Auto-Submitted %q, List-Unsubscribe %q, Precedence %q", m.Subject,
			h.Get("Auto-Submitted"), h.Get("List-Unsubscribe"), h.Get("Precedence"))
	}
	return m, h
}

// checkBody asserts that the text and the HTML of m say each of want and
// none of avoid, and that neither names the software.
func checkBody(t *testing.T, m *mailpittest.Message, want, avoid []string) {
	t.Helper()
	for part, body := range map[string]string{"text": m.Text, "HTML": m.HTML} {
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %s lacks %q:\n%s", m.Subject, part, w, body)
			}
		}
		for _, a := range append(avoid, "aptflow") {
			if strings.Contains(strings.ToLower(body), strings.ToLower(a)) {
				t.Errorf("%s: %s says %q:\n%s", m.Subject, part, a, body)
			}
		}
	}
}

// TestEmailLinks follows one dossier of a procedure with liens and a
// reply_to through every kind of e-mail: the applicant's link to their
// dossier (liens.usager, {id} replaced) and a Reply-To in each e-mail to
// them, the instructeurs' link (liens.instructeur) and no Reply-To in each
// of theirs, the motivation of repasser_en_construction, the signature of
// the service alone. A procedure without them gets no link, no Reply-To,
// and asks not to be answered.
func TestEmailLinks(t *testing.T) {
	t.Parallel()
	c := &clock{t: t0}
	s := apptest.Start(t, apptest.Options{Now: c.Now})
	proc := s.ProcedureWith(map[string]any{
		"liens": map[string]any{
			"usager":      "https://demarche.rhone.example/dossiers/{id}?onglet=resume",
			"instructeur": "https://instruction.rhone.example/procedures/apt/dossiers/{id}",
		},
		"reply_to": "Etrangers@Rhone.example",
	})
	a := s.Instructeur(proc, "Camille Martin")
	b := s.Instructeur(proc, "Dominique Petit")
	id, usager := s.Dossier(proc)
	usagerURL := fmt.Sprintf("https://demarche.rhone.example/dossiers/%d?onglet=resume", id)
	instURL := fmt.Sprintf("https://instruction.rhone.example/procedures/apt/dossiers/%d", id)

	p := s.Must(200, "GET", fmt.Sprintf("/v1/dossiers/%d", id), nil)
	if p["procedure_id"] != float64(proc) {
		t.Fatalf("dossier %v", p)
	}

	toUsager := func(t *testing.T, query string, want, avoid []string) {
		t.Helper()
		m, h := received(t, s, "to:"+usager+" "+query)
		if got := h.Get("Reply-To"); got != "<etrangers@rhone.example>" {
			t.Errorf("%s: Reply-To %q, want the procedure's", m.Subject, got)
		}
		checkBody(t, m, append(want, usagerURL, "répondez à ce courriel", "Préfecture du Rhône"),
			append(avoid, "instruction.rhone.example", "{id}", "ne pas y répondre"))
		if !strings.HasSuffix(strings.TrimSpace(strings.Split(m.Text, "Bien cordialement,")[1]), "utilisez la messagerie de votre dossier.") ||
			!strings.Contains(m.Text, "Bien cordialement,\n\nPréfecture du Rhône\n") {
			t.Errorf("%s: not signed by the service alone:\n%s", m.Subject, m.Text)
		}
	}
	toInstructeur := func(t *testing.T, who, query string, want []string) {
		t.Helper()
		m, h := received(t, s, "to:"+who+" "+query)
		if got := h.Get("Reply-To"); got != "" {
			t.Errorf("%s: Reply-To %q in an instructeur's e-mail", m.Subject, got)
		}
		checkBody(t, m, append(want, instURL, "Préfecture du Rhône"), []string{"demarche.rhone.example", "{id}"})
	}

	t.Run("EnInstruction", func(t *testing.T) {
		if r := s.Event(id, "passer_en_instruction", a, ""); r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		toUsager(t, "subject:examiné", []string{"accepté ou refusé"}, []string{"dès qu'une décision"})
	})
	t.Run("RepasserWithMotivation", func(t *testing.T) {
		if r := s.Event(id, "repasser_en_construction", a, "Joignez votre contrat de travail signé."); r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		toUsager(t, "subject:modifiable", []string{"vous demande de modifier", "Joignez votre contrat de travail signé."}, []string{"peut-être"})
	})
	t.Run("Notification", func(t *testing.T) {
		s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": "usager", "body": "Voici mon contrat signé."})
		toInstructeur(t, a, "subject:activité", []string{"Voici mon contrat signé.", "nouveau message de l"})
		m, _ := received(t, s, "to:"+a+" subject:activité")
		checkBody(t, m, nil, []string{"(usager)"})
	})
	t.Run("MessageUsager", func(t *testing.T) {
		s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/messages", id), map[string]any{"from": a, "body": "Merci, le dossier est complet."})
		toUsager(t, "subject:message", []string{"Merci, le dossier est complet."}, nil)
	})
	t.Run("Digest", func(t *testing.T) {
		s.Must(204, "PUT", fmt.Sprintf("/v1/dossiers/%d/followers/%s", id, b), nil)
		s.Must(200, "PUT", "/v1/instructeurs/"+b+"/preferences", map[string]any{"notifications": "daily"})
		s.Must(201, "POST", fmt.Sprintf("/v1/dossiers/%d/avis", id), map[string]any{"expert": "expert@direccte.example", "body": "Rien à signaler."})
		if res, err := jobs.SendDigests(t.Context(), s.Service, s.River, s.Jobs, time.Now()); err != nil || res.Digests != 1 {
			t.Fatalf("SendDigests = %+v, %v", res, err)
		}
		toInstructeur(t, b, "subject:récapitulatif", []string{"Rien à signaler.", "Autorisation provisoire de travail"})
	})
	t.Run("Stale", func(t *testing.T) {
		waitJobsDone(t, s)
		if res := scan(t, s, t0.Add(31*day)); res.Flagged != 1 {
			t.Fatalf("scan: %+v", res)
		}
		toUsager(t, `subject:"toujours en construction"`, []string{"Compléter votre dossier"}, nil)
		// Followed by a and b: each gets the list.
		toInstructeur(t, a, `subject:"sans activité"`, []string{"envoyé à l'usager"})
	})

	t.Run("WithoutLiens", func(t *testing.T) {
		plain := s.Procedure()
		inst := s.Instructeur(plain, "Sacha Bernard")
		id, usager := s.Dossier(plain)
		if r := s.Event(id, "passer_en_instruction", inst, ""); r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		m, h := received(t, s, "to:"+usager)
		if got := h.Get("Reply-To"); got != "" {
			t.Errorf("Reply-To %q without the procedure's", got)
		}
		checkBody(t, m, []string{"merci de ne pas y répondre"}, []string{"https://", "Suivre votre dossier", "répondez à ce courriel"})
	})
}

// TestProcedureLiens: a procedure's liens and reply_to are checked, one
// problem per field, and given back as set.
func TestProcedureLiens(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{NoWorkers: true})
	base := map[string]any{
		"libelle": "APT", "service": map[string]any{"nom": "Préfecture du Rhône", "adresse": "Lyon"},
		"stale_after_days": 30, "heures_hebdo_max": 20,
	}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	p := s.Must(201, "POST", "/v1/procedures", with(map[string]any{
		"liens":    map[string]any{"usager": "https://demarche.example/d/{id}", "instructeur": "http://intranet.example/{id}/voir"},
		"reply_to": "Bureau@Prefecture.example",
	}))
	if l := p["liens"].(map[string]any); l["usager"] != "https://demarche.example/d/{id}" || l["instructeur"] != "http://intranet.example/{id}/voir" || p["reply_to"] != "bureau@prefecture.example" {
		t.Errorf("created %v", p)
	}
	if p := s.Must(201, "POST", "/v1/procedures", base); fmt.Sprint(p["liens"]) != "map[]" || p["reply_to"] != nil {
		t.Errorf("without liens: %v", p)
	}

	for name, tc := range map[string]struct {
		liens   map[string]any
		replyTo string
		want    map[string]string // field → code
	}{
		"NoID":       {liens: map[string]any{"usager": "https://demarche.example/d/"}, want: map[string]string{"liens.usager": "missing_id"}},
		"NotHTTP":    {liens: map[string]any{"instructeur": "javascript:alert({id})"}, want: map[string]string{"liens.instructeur": "invalid_url"}},
		"Relative":   {liens: map[string]any{"usager": "/dossiers/{id}"}, want: map[string]string{"liens.usager": "invalid_url"}},
		"UserInfo":   {liens: map[string]any{"usager": "https://prefecture.gouv.fr@evil.example/{id}"}, want: map[string]string{"liens.usager": "invalid_url"}},
		"Space":      {liens: map[string]any{"usager": "https://demarche.example/d/{id} x"}, want: map[string]string{"liens.usager": "invalid_url"}},
		"Bidi":       {liens: map[string]any{"usager": "https://demarche.example/\u202e{id}"}, want: map[string]string{"liens.usager": "invalid_url"}},
		"TooLong":    {liens: map[string]any{"usager": "https://demarche.example/{id}/" + strings.Repeat("a", 2000)}, want: map[string]string{"liens.usager": "too_long"}},
		"Both":       {liens: map[string]any{"usager": "ftp://x/{id}", "instructeur": "https://x.example/"}, want: map[string]string{"liens.usager": "invalid_url", "liens.instructeur": "missing_id"}},
		"BadReplyTo": {replyTo: "bureau at prefecture", want: map[string]string{"reply_to": "invalid_email"}},
		"AllBad":     {liens: map[string]any{"usager": "x"}, replyTo: "x", want: map[string]string{"liens.usager": "missing_id", "reply_to": "invalid_email"}},
	} {
		t.Run(name, func(t *testing.T) {
			body := with(map[string]any{"liens": tc.liens})
			if tc.replyTo != "" {
				body["reply_to"] = tc.replyTo
			}
			r := s.Do("POST", "/v1/procedures", body)
			if r.StatusCode != 422 || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
			got := map[string]string{}
			for _, e := range r.JSON(t)["errors"].([]any) {
				e := e.(map[string]any)
				got[e["field"].(string)] = e["code"].(string)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("errors %v, want %v", got, tc.want)
			}
		})
	}
	var n int
	if err := s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM procedures`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d procedures (%v): a refused one was written", n, err)
	}
}
