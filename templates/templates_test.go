package templates

import (
	"errors"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/aptflow/aptflow/workflow"
)

func setup(t testing.TB) (*Templates, *time.Location) {
	t.Helper()
	tpl, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tpl, workflow.Paris()
}

// checkEmail holds the properties every rendered e-mail must have.
func checkEmail(t testing.TB, kind string, e Email) {
	t.Helper()
	if e.Subject == "" || strings.ContainsAny(e.Subject, "\r\n") {
		t.Errorf("%s: subject %q is empty or not one line", kind, e.Subject)
	}
	for name, s := range map[string]string{"subject": e.Subject, "text": e.Text, "html": e.HTML} {
		if !utf8.ValidString(s) {
			t.Errorf("%s: %s is not valid UTF-8", kind, name)
		}
	}
	if !strings.HasSuffix(e.Text, "\n") || strings.Contains(e.Text, "\n\n\n") || strings.Contains(e.Text, "\r") {
		t.Errorf("%s: text is not tidy:\n%s", kind, e.Text)
	}
	// French typography, whatever the data: no ordinary space where a line
	// may break before « : ; ! ? » or inside « ».
	for name, s := range map[string]string{"subject": e.Subject, "text": e.Text, "html": e.HTML} {
		if m := badTypography.FindString(s); m != "" {
			t.Errorf("%s: %s has %q, without a no-break space", kind, name, m)
		}
	}
	if !strings.HasPrefix(e.HTML, "<!DOCTYPE html>") || !strings.Contains(e.HTML, `<html lang="fr">`) {
		t.Errorf("%s: HTML is not a French document:\n%s", kind, e.HTML)
	}
	if strings.Contains(strings.ToLower(e.HTML), "<script") {
		t.Errorf("%s: HTML contains a script element", kind)
	}
}

// badTypography finds an ordinary space (not at a line's start) before
// « : ; ! ? », or inside « ».
var badTypography = regexp.MustCompile(`[^\s] +[:;!?»]|« `)

func TestEmailSubject(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	d := sample(paris)
	cases := map[string]string{
		workflow.MailEnInstruction:    "Votre dossier nº 42 va être examiné",
		workflow.MailEnConstruction:   "Votre dossier nº 42 est de nouveau modifiable",
		workflow.MailAccepte:          "Votre dossier nº 42 a été accepté",
		workflow.MailRefuse:           "Votre dossier nº 42 a été refusé",
		workflow.MailMessageUsager:    "Nouveau message concernant votre dossier nº 42",
		workflow.MailNotification:     "Dossier nº 42" + nb + ": nouvelle activité",
		workflow.MailDigest:           "Votre récapitulatif quotidien" + nb + ": 2 dossiers avec de l'activité",
		workflow.MailStaleInstructeur: "2 dossiers en construction sans activité depuis plus de 30 jours",
		workflow.MailStaleUsager:      "Votre dossier nº 42 est toujours en construction",
		workflow.MailExpirationUsager: "Votre dossier nº 42 sera supprimé le 26 novembre 2027",
	}
	if len(cases) != len(workflow.MailKinds()) {
		t.Fatalf("%d subjects tested for %d kinds", len(cases), len(workflow.MailKinds()))
	}
	for kind, want := range cases {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e, err := tpl.Email(kind, d)
			if err != nil {
				t.Fatal(err)
			}
			checkEmail(t, kind, e)
			if e.Subject != want {
				t.Errorf("subject = %q, want %q", e.Subject, want)
			}
			if !strings.Contains(e.HTML, "<title>") {
				t.Errorf("HTML has no title")
			}
		})
	}
}

func TestEmailSingular(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	d := sample(paris)
	d.Dossiers = d.Dossiers[:1]
	d.StaleDays = 1
	for kind, want := range map[string]string{
		workflow.MailDigest:           "Votre récapitulatif quotidien" + nb + ": 1 dossier avec de l'activité",
		workflow.MailStaleInstructeur: "1 dossier en construction sans activité depuis plus d'un jour",
	} {
		e, err := tpl.Email(kind, d)
		if err != nil {
			t.Fatal(err)
		}
		if e.Subject != want {
			t.Errorf("%s: subject = %q, want %q", kind, e.Subject, want)
		}
	}
	e, err := tpl.Email(workflow.MailStaleInstructeur, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Text, "Le dossier suivant est en construction et n'a fait") {
		t.Errorf("stale_instructeur for one dossier is not in the singular:\n%s", e.Text)
	}
}

func TestEmailBody(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	cases := []struct {
		kind  string
		edit  func(*EmailData)
		want  []string // in both text and HTML
		avoid []string // in neither
	}{
		{kind: workflow.MailEnInstruction, want: []string{"vous ne pouvez plus le modifier", "messagerie", "Préfecture du Rhône",
			// classer_sans_suite sends nothing: the promise names what does.
			"si votre dossier est accepté ou refusé, ou s'il vous est rendu"},
			avoid: []string{"dès qu'une décision"}},
		{kind: workflow.MailEnConstruction, edit: func(d *EmailData) { d.Motivation = "Joignez votre contrat de travail signé." },
			want:  []string{"de nouveau modifiable", "vous demande de modifier", "Joignez votre contrat de travail signé.", "https://demarche.rhone.gouv.fr/dossiers/42"},
			avoid: []string{"peut-être", "Si vous ne savez pas quoi modifier"}},
		{kind: workflow.MailEnConstruction, edit: func(d *EmailData) { d.Motivation = "" },
			want:  []string{"de nouveau modifiable", "Si vous ne savez pas quoi modifier, posez la question"},
			avoid: []string{"vous demande de modifier", "peut-être"}},
		{kind: workflow.MailAccepte, want: []string{"a été accepté", "26 novembre 2026", "Le contrat de travail est conforme.", "PDF",
			"https://apt.rhone.gouv.fr/attestations/abc123", "https://demarche.rhone.gouv.fr/dossiers/42"}},
		{kind: workflow.MailAccepte, edit: func(d *EmailData) { d.Motivation = "" },
			avoid: []string{"Message du service instructeur"}},
		{kind: workflow.MailRefuse, edit: func(d *EmailData) { d.Motivation = "Le titre de séjour a expiré." },
			want: []string{"a été refusé", "Motif du refus", "Le titre de séjour a expiré.", "recours gracieux", "recours contentieux", "deux mois"}},
		{kind: workflow.MailMessageUsager, want: []string{"Merci de joindre votre titre de séjour.", "https://demarche.rhone.gouv.fr/dossiers/42"}},
		{kind: workflow.MailNotification, want: []string{"Jeanne Martin", "nº 42", "26/11/2026 à 14:05", "nouveau message de l", "nouveau message d", "nouvel avis d", "dossier modifié par l", "Avis favorable.",
			"(agent@rhone.gouv.fr)", "(expert@rhone.gouv.fr)"},
			avoid: []string{"(usager)", "usager ("}},
		{kind: workflow.MailDigest, want: []string{"Dossier nº 42", "Dossier nº 43", "Wei Zhang", "en instruction", "nouvel avis d",
			"https://instruction.rhone.gouv.fr/dossiers/42", "https://instruction.rhone.gouv.fr/dossiers/43"}},
		{kind: workflow.MailStaleInstructeur, want: []string{"Dossier nº 42", "Dossier nº 43", "dernière activité le 26 novembre 2026", "30 jours",
			"https://instruction.rhone.gouv.fr/dossiers/42", "https://instruction.rhone.gouv.fr/dossiers/43",
			"envoyé aux usagers concernés. Si besoin, vous pouvez leur écrire"},
			avoid: []string{"chaque usager"}},
		{kind: workflow.MailStaleInstructeur, edit: func(d *EmailData) { d.Dossiers = d.Dossiers[:1] },
			want: []string{"envoyé à l'usager. Si besoin, vous pouvez lui écrire"}},
		{kind: workflow.MailStaleUsager, want: []string{"toujours en construction", "30 jours", "compléter", "clôturé"}},
		{kind: workflow.MailExpirationUsager, want: []string{"sera supprimé le 26 novembre 2027", "toujours en construction", "le modifier",
			"https://apt.rhone.gouv.fr/attestations/abc123"}, avoid: []string{"conservez-en"}},
		{kind: workflow.MailExpirationUsager, edit: func(d *EmailData) { d.State = string(workflow.Accepte); d.VerificationURL = "" },
			want: []string{"sera supprimé le 26 novembre 2027", "conservez-en"}, avoid: []string{"toujours en construction", "page de vérification"}},
		// Without links, nothing points nowhere.
		{kind: workflow.MailStaleUsager, edit: func(d *EmailData) { d.DossierURL = "" }, avoid: []string{"Compléter votre dossier", "href=\"\""}},
		{kind: workflow.MailDigest, edit: func(d *EmailData) { d.Dossiers[0].URL, d.Dossiers[1].URL = "", "" }, avoid: []string{"https://instruction", "href=\"\""}},
		// Replies: read only when the procedure says where they go.
		{kind: workflow.MailRefuse, want: []string{"répondez à ce courriel"}, avoid: []string{"ne pas y répondre"}},
		{kind: workflow.MailRefuse, edit: func(d *EmailData) { d.ReplyTo = "" }, want: []string{"merci de ne pas y répondre"}, avoid: []string{"répondez à ce courriel"}},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			d := sample(paris)
			if tc.edit != nil {
				tc.edit(&d)
			}
			e, err := tpl.Email(tc.kind, d)
			if err != nil {
				t.Fatal(err)
			}
			checkEmail(t, tc.kind, e)
			for _, w := range tc.want {
				if !strings.Contains(e.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, e.Text)
				}
				if !strings.Contains(e.HTML, w) {
					t.Errorf("HTML lacks %q:\n%s", w, e.HTML)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(e.Text, a) || strings.Contains(e.HTML, a) {
					t.Errorf("e-mail contains %q", a)
				}
			}
		})
	}
}

func TestEmailUnicode(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	names := []struct{ prenom, nom string }{
		{"Élodie", "Dupré"},
		{"Œdipe", "Lefèvre-Æsir"},
		{"小明", "王"},
		{"محمد", "العربي"},
		{"Zoë", "N’Diaye"},
	}
	for _, n := range names {
		t.Run(n.prenom, func(t *testing.T) {
			t.Parallel()
			d := sample(paris)
			d.Prenom, d.Nom = n.prenom, n.nom
			d.RecipientNom = n.nom + " " + n.prenom
			d.ServiceNom = "Préfecture de l'Hérault"
			for i := range d.Dossiers {
				d.Dossiers[i].Prenom, d.Dossiers[i].Nom = n.prenom, n.nom
			}
			full := n.prenom + " " + n.nom
			for _, kind := range workflow.MailKinds() {
				e, err := tpl.Email(kind, d)
				if err != nil {
					t.Fatal(err)
				}
				checkEmail(t, kind, e)
				want := []string{full}
				if kind == workflow.MailNotification || kind == workflow.MailDigest || kind == workflow.MailStaleInstructeur {
					want = append(want, d.RecipientNom)
				}
				for _, w := range want {
					if !strings.Contains(e.Text, w) || !strings.Contains(e.HTML, w) {
						t.Errorf("%s: %q not intact in text or HTML:\n%s\n%s", kind, w, e.Text, e.HTML)
					}
				}
				if strings.Contains(e.Subject, n.prenom) || strings.Contains(e.Subject, n.nom) {
					t.Errorf("%s: subject %q contains the applicant's name", kind, e.Subject)
				}
			}
		})
	}
}

func TestEmailEscapesHTML(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	const evil = `<script>alert("x")</script>`
	d := sample(paris)
	d.Prenom, d.Nom, d.RecipientNom, d.ServiceNom = evil, evil, evil, evil
	d.ProcedureLibelle, d.Motivation, d.Message = evil, evil, evil
	d.VerificationURL = `javascript:alert(1)`
	for i := range d.Activities {
		d.Activities[i].Author, d.Activities[i].Excerpt = evil, evil
	}
	for i := range d.Dossiers {
		d.Dossiers[i].Prenom, d.Dossiers[i].Nom = evil, evil
		d.Dossiers[i].Activities = d.Activities
	}
	for _, kind := range workflow.MailKinds() {
		e, err := tpl.Email(kind, d)
		if err != nil {
			t.Fatal(err)
		}
		checkEmail(t, kind, e)
		if !strings.Contains(e.HTML, "&lt;script&gt;") {
			t.Errorf("%s: escaped name missing from HTML:\n%s", kind, e.HTML)
		}
		if !strings.Contains(e.Text, evil) {
			t.Errorf("%s: plain text must show the name as is:\n%s", kind, e.Text)
		}
		if strings.Contains(e.HTML, `href="javascript:`) {
			t.Errorf("%s: unsafe URL in a link", kind)
		}
	}
}

func TestEmailSubjectOneLine(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	d := sample(paris)
	nl := "a\r\nBcc: x@example.com\n\u2028b"
	d.Prenom, d.Nom, d.RecipientNom, d.ServiceNom, d.ProcedureLibelle = nl, nl, nl, nl, nl
	d.Motivation, d.Message = nl, nl
	for _, kind := range workflow.MailKinds() {
		e, err := tpl.Email(kind, d)
		if err != nil {
			t.Fatal(err)
		}
		checkEmail(t, kind, e)
		if strings.Contains(e.Subject, "Bcc") {
			t.Errorf("%s: data leaked into the subject %q", kind, e.Subject)
		}
	}
}

func TestEmailUnknownKind(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	for _, kind := range []string{"", "Accepte", "sans_suite", "layout"} {
		if _, err := tpl.Email(kind, sample(paris)); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("Email(%q) error = %v, want ErrUnknownKind", kind, err)
		}
	}
}

func TestFrenchDates(t *testing.T) {
	t.Parallel()
	_, paris := setup(t)
	f := funcMap(paris)
	date := f["date"].(func(time.Time) string)
	datetime := f["datetime"].(func(time.Time) string)
	cases := []struct {
		in             time.Time
		date, datetime string
	}{
		{time.Date(2026, 11, 26, 13, 5, 0, 0, time.UTC), "26 novembre 2026", "26/11/2026 à 14:05"}, // winter: UTC+1
		{time.Date(2026, 7, 14, 12, 0, 0, 0, time.UTC), "14 juillet 2026", "14/07/2026 à 14:00"},   // summer: UTC+2
		{time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), "1er janvier 2027", "01/01/2027 à 00:30"},
		{time.Date(2026, 8, 1, 8, 0, 0, 0, paris), "1er août 2026", "01/08/2026 à 08:00"},
		{time.Time{}, "", ""},
	}
	for _, tc := range cases {
		if got := date(tc.in); got != tc.date {
			t.Errorf("date(%v) = %q, want %q", tc.in, got, tc.date)
		}
		if got := datetime(tc.in); got != tc.datetime {
			t.Errorf("datetime(%v) = %q, want %q", tc.in, got, tc.datetime)
		}
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	if got := excerpt(" Bonjour,\n\n  voici   mon titre. "); got != "Bonjour, voici mon titre." {
		t.Errorf("excerpt = %q", got)
	}
	long := excerpt(strings.Repeat("é", 500))
	if n := utf8.RuneCountInString(long); n != excerptRunes || !strings.HasSuffix(long, "…") {
		t.Errorf("long excerpt has %d runes: %q", n, long)
	}
}

// realFiles copies the embedded templates so a test can break one of them.
func realFiles(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadFailsOnBadTemplate(t *testing.T) {
	t.Parallel()
	if _, err := Load(); err != nil {
		t.Fatalf("load of the real files: %v", err)
	}
	mail, activities := workflow.MailKinds(), workflow.ActivityKinds()
	cases := map[string]func(fstest.MapFS){
		"ParseError": func(m fstest.MapFS) {
			m["email/accepte.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{if}}{{end}}`)}
		},
		"ExecError": func(m fstest.MapFS) {
			m["email/refuse.txt"] = &fstest.MapFile{Data: []byte(`{{define "subject"}}x{{end}}{{define "body"}}{{.NoSuchField}}{{end}}`)}
		},
		"NoSubject": func(m fstest.MapFS) {
			m["email/digest.txt"] = &fstest.MapFile{Data: []byte(`{{define "body"}}x{{end}}`)}
		},
		"NoContent":   func(m fstest.MapFS) { m["email/digest.html"] = &fstest.MapFile{Data: []byte(`<p>x</p>`)} },
		"MissingKind": func(m fstest.MapFS) { delete(m, "email/stale_usager.html") },
		"UnknownFile": func(m fstest.MapFS) { m["email/acceptee.txt"] = &fstest.MapFile{Data: []byte(`x`)} },
		"WrongFuncUsage": func(m fstest.MapFS) {
			m["email/accepte.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{date .Prenom}}{{end}}`)}
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := realFiles(t)
			breakIt(m)
			if _, err := load(m, mail, activities); err == nil {
				t.Error("load succeeded with a broken template")
			}
		})
	}
}

// TestLoadChecksKinds: the templates start only if they are exactly those
// of workflow's e-mail kinds, and their labels those of its activity kinds:
// a kind without its text or HTML template, a template of no kind, an
// activity kind without its label, a label of no kind all fail the start.
func TestLoadChecksKinds(t *testing.T) {
	t.Parallel()
	mail, activities := workflow.MailKinds(), workflow.ActivityKinds()
	fails := func(t *testing.T, m fstest.MapFS, mail, activities []string, want string) {
		t.Helper()
		_, err := load(m, mail, activities)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load: %v, want an error about %q", err, want)
		}
	}
	for _, kind := range mail {
		for _, ext := range []string{".txt", ".html"} {
			t.Run("Missing/"+kind+ext, func(t *testing.T) {
				t.Parallel()
				m := realFiles(t)
				delete(m, "email/"+kind+ext)
				fails(t, m, mail, activities, "email/"+kind+ext+": missing")
			})
		}
	}
	t.Run("KindWithoutTemplates", func(t *testing.T) {
		t.Parallel()
		fails(t, realFiles(t), append(mail, "rappel"), activities, "email/rappel.txt: missing")
	})
	t.Run("TemplateWithoutKind", func(t *testing.T) {
		t.Parallel()
		fails(t, realFiles(t), mail[1:], activities, `no e-mail kind "`+mail[0]+`"`)
	})
	t.Run("ActivityWithoutLabel", func(t *testing.T) {
		t.Parallel()
		fails(t, realFiles(t), mail, append(activities, "visio"), `activity kind "visio" has no label`)
	})
	t.Run("LabelWithoutActivity", func(t *testing.T) {
		t.Parallel()
		fails(t, realFiles(t), mail, activities[1:], `label of activity kind "`+activities[0]+`"`)
	})
}

func TestEmailConcurrent(t *testing.T) {
	t.Parallel()
	tpl, paris := setup(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			d := sample(paris)
			d.DossierID = int64(i)
			for _, kind := range workflow.MailKinds() {
				if _, err := tpl.Email(kind, d); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// FuzzEmail renders every kind from arbitrary strings: no error, no panic,
// one-line subjects, valid UTF-8, never a live <script>.
func FuzzEmail(f *testing.F) {
	f.Add("Élodie", "Dupré", "Préfecture du Rhône", "Le contrat est conforme.", "Bonjour,\nmerci.", "https://x.example/attestations/a", int64(42), 30, int64(1795000000))
	f.Add("<script>", "Œdipe", "", "", "", "javascript:alert(1)", int64(-1), 1, int64(0))
	f.Add("王\r\n小明", "محمد", "a\x00b", "\xff\xfe", "{{.Prenom}}", "", int64(1<<62), -5, int64(-1<<40))
	tpl, err := Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, prenom, nom, service, motivation, message, url string, id int64, days int, unix int64) {
		at := time.Unix(unix, 0)
		acts := []Activity{{DossierID: id, Kind: motivation, Author: nom, At: at, Excerpt: message}}
		d := EmailData{
			DossierID: id, ProcedureLibelle: service, ServiceNom: service,
			Prenom: prenom, Nom: nom, RecipientNom: nom + prenom,
			Motivation: motivation, DecidedAt: at, VerificationURL: url, PublicURL: url,
			Message: message, Activities: acts, StaleDays: days,
			Dossiers: []DossierSummary{{ID: id, Prenom: prenom, Nom: nom, State: message, LastActivityAt: at, Activities: acts}},
		}
		for _, kind := range workflow.MailKinds() {
			e, err := tpl.Email(kind, d)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			checkEmail(t, kind, e)
		}
	})
}
