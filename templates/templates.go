package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/aptflow/aptflow/jobs/mailer"
	"github.com/aptflow/aptflow/workflow"
)

// ErrUnknownKind is returned by [Templates.Email] for a kind it has no template for.
var ErrUnknownKind = errors.New("unknown e-mail kind")

// EmailData is everything a template may show. Each kind uses the fields that
// make sense for it and ignores the others.
type EmailData struct {
	DossierID        int64
	ProcedureLibelle string
	// ServiceNom signs the e-mail, alone: « Préfecture du Rhône »; for an
	// instructeur's list of dossiers of several services, their names
	// (JoinFR).
	ServiceNom   string
	Prenom, Nom  string // the applicant (demandeur)
	RecipientNom string // the instructeur addressed, for instructor e-mails
	// Motivation is the transition's: a decision's, or what to change for
	// en_construction.
	Motivation      string
	DecidedAt       time.Time
	VerificationURL string // PUBLIC_URL/attestations/{code}
	PublicURL       string
	// DossierURL links to the dossier in the recipient's application (the
	// procedure's liens.usager for the applicant, liens.instructeur for an
	// instructeur), "" when the procedure sets none.
	DossierURL string
	// ReplyTo is the address replies go to, "" when the e-mail is not to be
	// answered.
	ReplyTo    string
	Message    string           // body of a message from an instructeur to the applicant
	Activities []Activity       // for "notification": what happened on one dossier
	Dossiers   []DossierSummary // for "digest" and "stale_instructeur"
	// DossiersNotListed counts the dossiers of a "stale_instructeur" e-mail
	// beyond those in Dossiers: a long list is cut, the rest counted.
	DossiersNotListed int
	StaleDays         int
	// State is the dossier's state; ExpiresAt, for "expiration_usager",
	// when its conservation ends and its data are deleted.
	State     string
	ExpiresAt time.Time
}

// DossierCount is the number of dossiers the e-mail is about: those listed
// and those counted only.
func (d EmailData) DossierCount() int { return len(d.Dossiers) + d.DossiersNotListed }

// Activity is one thing that happened on a dossier, as listed to instructors.
type Activity struct {
	DossierID int64
	Kind      string // one of workflow.ActivityKinds
	Author    string
	At        time.Time
	Excerpt   string // the activity's text: the templates show its first excerptRunes characters, on one line
}

// DossierSummary is one dossier in a list sent to an instructeur (digest, stale dossiers).
type DossierSummary struct {
	ID             int64
	URL            string // the dossier in the instructeurs' application, "" for none
	Prenom, Nom    string
	State          string
	LastActivityAt time.Time
	Activities     []Activity
}

// Email is a rendered e-mail, ready for the mailer.
type Email struct {
	Subject string // one line, no personal data other than the dossier number
	Text    string // text/plain body
	HTML    string // text/html body, a complete document
}

// Templates holds the parsed templates of every kind. It is safe for
// concurrent use.
type Templates struct {
	byKind map[string]kindTemplates
}

type kindTemplates struct {
	text *texttemplate.Template // defines "subject" and "body"
	html *htmltemplate.Template // defines "content", wrapped by "layout"
}

// view is what the templates execute on: the data, plus the rendered subject
// so that the HTML can use it as its <title>.
type view struct {
	EmailData
	Subject string
}

//go:embed email
var files embed.FS

// Load parses the embedded templates of every e-mail kind of
// workflow.MailKinds and renders each once with sample data. Call it once
// at start: an error means a template is broken, or missing for a kind, or
// there for no kind, and the process should not start.
func Load() (*Templates, error) {
	return load(files, workflow.MailKinds(), workflow.ActivityKinds())
}

// load is Load of the templates in fsys, for the e-mail kinds and the
// activity kinds given.
func load(fsys fs.FS, kinds, activities []string) (*Templates, error) {
	paris := workflow.Paris()
	funcs := funcMap(paris)
	if err := checkFiles(fsys, kinds); err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	if err := checkLabels(activities); err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	t := &Templates{byKind: make(map[string]kindTemplates, len(kinds))}
	for _, kind := range kinds {
		text, err := texttemplate.New(kind).Funcs(funcs).
			ParseFS(fsys, "email/layout.txt", "email/"+kind+".txt")
		if err != nil {
			return nil, fmt.Errorf("load templates: %s: %w", kind, err)
		}
		html, err := htmltemplate.New(kind).Funcs(funcs).
			ParseFS(fsys, "email/layout.html", "email/"+kind+".html")
		if err != nil {
			return nil, fmt.Errorf("load templates: %s: %w", kind, err)
		}
		for _, name := range []string{"subject", "body"} {
			if text.Lookup(name) == nil {
				return nil, fmt.Errorf("load templates: %s.txt does not define %q", kind, name)
			}
		}
		for _, name := range []string{"layout", "content"} {
			if html.Lookup(name) == nil {
				return nil, fmt.Errorf("load templates: %s.html does not define %q", kind, name)
			}
		}
		t.byKind[kind] = kindTemplates{text: text, html: html}
	}
	// Execution errors (a field that does not exist, a function called with
	// the wrong type) only show when a template runs: run them all now.
	for _, kind := range kinds {
		if _, err := t.Email(kind, sample(paris)); err != nil {
			return nil, fmt.Errorf("load templates: %w", err)
		}
	}
	return t, nil
}

// checkFiles fails unless every kind has its two files (KIND.txt, which
// defines the subject and the text, and KIND.html) and every file belongs
// to a kind or is a layout: a kind without its template would fail its
// first e-mail, and a file of no kind (a typo in its name) would be
// silently ignored.
func checkFiles(fsys fs.FS, kinds []string) error {
	entries, err := fs.ReadDir(fsys, "email")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		base, ext := strings.TrimSuffix(name, path.Ext(name)), path.Ext(name)
		have[name] = true
		if (base != "layout" && !slices.Contains(kinds, base)) || (ext != ".txt" && ext != ".html") {
			errs = append(errs, fmt.Errorf("email/%s: no e-mail kind %q", name, base))
		}
	}
	for _, kind := range slices.Concat([]string{"layout"}, kinds) {
		for _, ext := range []string{".txt", ".html"} {
			if !have[kind+ext] {
				errs = append(errs, fmt.Errorf("email/%s%s: missing for e-mail kind %q", kind, ext, kind))
			}
		}
	}
	return errors.Join(errs...)
}

// checkLabels fails unless each activity kind and each state has a label,
// and each label a kind or a state: an e-mail must never list an activity
// or a state it cannot name.
func checkLabels(activities []string) error {
	var errs []error
	for _, kind := range activities {
		if activityLabels[kind] == "" {
			errs = append(errs, fmt.Errorf("activity kind %q has no label", kind))
		}
	}
	for kind := range activityLabels {
		if !slices.Contains(activities, kind) {
			errs = append(errs, fmt.Errorf("label of activity kind %q, which does not exist", kind))
		}
	}
	for _, state := range workflow.States {
		if stateLabels[state] == "" {
			errs = append(errs, fmt.Errorf("state %q has no label", state))
		}
	}
	if len(stateLabels) != len(workflow.States) {
		errs = append(errs, fmt.Errorf("%d state labels for %d states", len(stateLabels), len(workflow.States)))
	}
	return errors.Join(errs...)
}

// Email renders the e-mail of the given kind. It returns an error wrapping
// [ErrUnknownKind] for a kind that does not exist.
func (t *Templates) Email(kind string, d EmailData) (Email, error) {
	kt, ok := t.byKind[kind]
	if !ok {
		return Email{}, fmt.Errorf("render e-mail: %w: %q", ErrUnknownKind, kind)
	}
	v := view{EmailData: d}
	var buf bytes.Buffer
	if err := kt.text.ExecuteTemplate(&buf, "subject", v); err != nil {
		return Email{}, fmt.Errorf("render %s e-mail subject: %w", kind, err)
	}
	// Folded as the mailer folds a header, so that the subject shown in the
	// HTML's title is the one sent. Every part goes through the same French
	// typography, whatever template wrote it.
	v.Subject = Typo(mailer.OneLine(buf.String()))
	buf.Reset()
	if err := kt.text.ExecuteTemplate(&buf, "body", v); err != nil {
		return Email{}, fmt.Errorf("render %s e-mail text: %w", kind, err)
	}
	text := Typo(tidyText(buf.String()))
	buf.Reset()
	if err := kt.html.ExecuteTemplate(&buf, "layout", v); err != nil {
		return Email{}, fmt.Errorf("render %s e-mail HTML: %w", kind, err)
	}
	html := TypoHTML(strings.ToValidUTF8(normalizeNewlines(buf.String()), "\uFFFD"))
	return Email{Subject: v.Subject, Text: text, HTML: html}, nil
}

var blankLines = regexp.MustCompile(`\n{3,}`)

// tidyText lets the text templates stay readable: conditional sections leave
// blank lines and trailing spaces behind, which are removed here.
func tidyText(s string) string {
	s = strings.ToValidUTF8(normalizeNewlines(s), "\uFFFD")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	s = blankLines.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	return strings.Trim(s, "\n") + "\n"
}

func normalizeNewlines(s string) string {
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
}

// sample is data that exercises every branch a template may take, for the
// check in Load and the golden files.
func sample(loc *time.Location) EmailData {
	at := time.Date(2026, time.November, 26, 14, 5, 0, 0, loc)
	acts := []Activity{
		{DossierID: 42, Kind: workflow.ActivityMessageUsager, Author: "usager", At: at, Excerpt: "Bonjour,\nvoici mon titre de séjour : est-ce suffisant ?"},
		{DossierID: 42, Kind: workflow.ActivityMessageInstructeur, Author: "agent@rhone.gouv.fr", At: at, Excerpt: "Merci."},
		{DossierID: 42, Kind: workflow.ActivityAvis, Author: "expert@rhone.gouv.fr", At: at, Excerpt: "Avis favorable."},
		{DossierID: 42, Kind: workflow.ActivityModification, Author: "usager", At: at},
	}
	const instruction = "https://instruction.rhone.gouv.fr/dossiers/"
	return EmailData{
		DossierID:        42,
		ProcedureLibelle: "Autorisation provisoire de travail (APT) pour les étudiants",
		ServiceNom:       "Préfecture du Rhône",
		Prenom:           "Élodie",
		Nom:              "Dupré",
		RecipientNom:     "Jeanne Martin",
		Motivation:       "Le contrat de travail est conforme.",
		DecidedAt:        at,
		VerificationURL:  "https://apt.rhone.gouv.fr/attestations/abc123",
		PublicURL:        "https://apt.rhone.gouv.fr",
		DossierURL:       "https://demarche.rhone.gouv.fr/dossiers/42",
		ReplyTo:          "etrangers@rhone.gouv.fr",
		Message:          "Bonjour,\n\nMerci de joindre votre titre de séjour.",
		Activities:       acts,
		Dossiers: []DossierSummary{
			{ID: 42, URL: instruction + "42", Prenom: "Élodie", Nom: "Dupré", State: string(workflow.EnConstruction), LastActivityAt: at, Activities: acts},
			{ID: 43, URL: instruction + "43", Prenom: "Wei", Nom: "Zhang", State: string(workflow.EnInstruction), LastActivityAt: at, Activities: acts[:1]},
		},
		StaleDays: 30,
		State:     string(workflow.EnConstruction),
		ExpiresAt: at.AddDate(1, 0, 0),
	}
}
