package templates

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptflow/aptflow/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden e-mails under testdata/email from the templates")

// goldenData is the sample data as the jobs fill it for kind: an
// instructeur's e-mail links to the back office and has no Reply-To; a
// dossier given back to its applicant says what to change.
func goldenData(kind string) EmailData {
	d := sample(workflow.Paris())
	if workflow.MailToInstructeur(kind) {
		d.DossierURL = "https://instruction.rhone.gouv.fr/dossiers/42"
		d.ReplyTo = ""
	}
	if kind == workflow.MailEnConstruction {
		d.Motivation = "Joignez votre contrat de travail signé par l'employeur.\nLa copie de votre titre de séjour est illisible : merci de la numériser à nouveau."
	}
	return d
}

// TestGolden renders every kind and compares it with its golden files,
// testdata/email/KIND.txt (the subject, then the text) and KIND.html, which
// a reviewer reads in the diff of a change to a template (the HTML opens in
// a browser). After changing a template: go test ./templates -update.
func TestGolden(t *testing.T) {
	t.Parallel()
	tpl, _ := setup(t)
	dir := filepath.Join("testdata", "email")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range workflow.MailKinds() {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e, err := tpl.Email(kind, goldenData(kind))
			if err != nil {
				t.Fatal(err)
			}
			for file, got := range map[string]string{
				kind + ".txt":  "Subject: " + e.Subject + "\n\n" + e.Text,
				kind + ".html": e.HTML,
			} {
				path := filepath.Join(dir, file)
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (go test ./templates -update writes it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs from the template's output (go test ./templates -update, then read the diff):\n%s", path, got)
				}
			}
		})
	}
}

// TestNoSoftwareName: no e-mail names the software that sends it, which
// means nothing to its reader; each is signed by the service alone.
func TestNoSoftwareName(t *testing.T) {
	t.Parallel()
	tpl, _ := setup(t)
	for _, kind := range workflow.MailKinds() {
		d := goldenData(kind)
		e, err := tpl.Email(kind, d)
		if err != nil {
			t.Fatal(err)
		}
		for part, s := range map[string]string{"subject": e.Subject, "text": e.Text, "HTML": e.HTML} {
			if strings.Contains(strings.ToLower(s), "aptflow") {
				t.Errorf("%s: the %s names the software:\n%s", kind, part, s)
			}
		}
		if !strings.Contains(e.Text, "Bien cordialement,\n\nPréfecture du Rhône\n") ||
			!strings.Contains(e.HTML, "<p>Bien cordialement,</p>\n<p>Préfecture du Rhône</p>") {
			t.Errorf("%s: not signed « Préfecture du Rhône » alone:\n%s", kind, e.Text)
		}
	}
}
