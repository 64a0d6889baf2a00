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
	_ "time/tzdata" // French dates must not depend on the host's zone database.

	"github.com/aptflow/aptflow/jobs/mailer"
)

// The e-mail kinds. Their names are stored with each delivery and shared with
// the jobs code: never rename one.
const (
	KindEnInstruction    = "en_instruction"    // to the applicant: the dossier will be examined
	KindEnConstruction   = "en_construction"   // to the applicant: the dossier can be edited again
	KindAccepte          = "accepte"           // to the applicant: accepted, attestation attached
	KindRefuse           = "refuse"            // to the applicant: refused, with motivation and recourse
	KindMessageUsager    = "message_usager"    // to the applicant: a message from an instructeur
	KindNotification     = "notification"      // to a follower: a burst of activity on one dossier
	KindDigest           = "digest"            // to an instructeur: the daily digest
	KindStaleInstructeur = "stale_instructeur" // to an instructeur: dossiers en construction without activity
	KindStaleUsager      = "stale_usager"      // to the applicant: reminder that the dossier is still en construction
)

// kinds lists every kind, in the order of the procedure.
var kinds = []string{
	KindEnInstruction, KindEnConstruction, KindAccepte, KindRefuse, KindMessageUsager,
	KindNotification, KindDigest, KindStaleInstructeur, KindStaleUsager,
}

// Kinds returns the names of all e-mail kinds, in the order of the procedure.
func Kinds() []string { return slices.Clone(kinds) }

// ErrUnknownKind is returned by [Templates.Email] for a kind it has no template for.
var ErrUnknownKind = errors.New("unknown e-mail kind")

// Activity kinds, as found in [Activity.Kind].
const (
	ActivityMessageUsager      = "message_usager"
	ActivityMessageInstructeur = "message_instructeur"
	ActivityAvis               = "avis"
	ActivityModification       = "modification"
)

// EmailData is everything a template may show. Each kind uses the fields that
// make sense for it and ignores the others.
type EmailData struct {
	DossierID        int64
	ProcedureLibelle string
	ServiceNom       string // e.g. « Préfecture du Rhône »; signs the e-mail
	Prenom, Nom      string // the applicant (demandeur)
	RecipientNom     string // the instructeur addressed, for instructor e-mails
	Motivation       string
	DecidedAt        time.Time
	VerificationURL  string // PUBLIC_URL/attestations/{code}
	PublicURL        string
	Message          string           // body of a message from an instructeur to the applicant
	Activities       []Activity       // for "notification": what happened on one dossier
	Dossiers         []DossierSummary // for "digest" and "stale_instructeur"
	// DossiersNotListed counts the dossiers of a "stale_instructeur" e-mail
	// beyond those in Dossiers: a long list is cut, the rest counted.
	DossiersNotListed int
	StaleDays         int
}

// DossierCount is the number of dossiers the e-mail is about: those listed
// and those counted only.
func (d EmailData) DossierCount() int { return len(d.Dossiers) + d.DossiersNotListed }

// Activity is one thing that happened on a dossier, as listed to instructors.
type Activity struct {
	DossierID int64
	Kind      string // ActivityMessageUsager, ActivityMessageInstructeur, ActivityAvis or ActivityModification
	Author    string
	At        time.Time
	Excerpt   string // the activity's text: the templates show its first excerptRunes characters, on one line
}

// DossierSummary is one dossier in a list sent to an instructeur (digest, stale dossiers).
type DossierSummary struct {
	ID             int64
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

// Load parses the embedded templates of every kind and renders each once with
// sample data. Call it once at start: an error means a template is broken and
// the process should not start.
func Load() (*Templates, error) {
	return load(files)
}

func load(fsys fs.FS) (*Templates, error) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	funcs := funcMap(paris)
	if err := checkFiles(fsys); err != nil {
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

// checkFiles fails on a template file that belongs to no kind, e.g. a typo in
// its name, which would otherwise be silently ignored.
func checkFiles(fsys fs.FS) error {
	entries, err := fs.ReadDir(fsys, "email")
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		base := strings.TrimSuffix(name, path.Ext(name))
		if base != "layout" && !slices.Contains(kinds, base) {
			return fmt.Errorf("email/%s: no e-mail kind %q", name, base)
		}
	}
	return nil
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
	// HTML's title is the one sent.
	v.Subject = mailer.OneLine(buf.String())
	buf.Reset()
	if err := kt.text.ExecuteTemplate(&buf, "body", v); err != nil {
		return Email{}, fmt.Errorf("render %s e-mail text: %w", kind, err)
	}
	text := tidyText(buf.String())
	buf.Reset()
	if err := kt.html.ExecuteTemplate(&buf, "layout", v); err != nil {
		return Email{}, fmt.Errorf("render %s e-mail HTML: %w", kind, err)
	}
	html := strings.ToValidUTF8(normalizeNewlines(buf.String()), "\uFFFD")
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
// check in Load.
func sample(loc *time.Location) EmailData {
	at := time.Date(2026, time.November, 26, 14, 5, 0, 0, loc)
	acts := []Activity{
		{DossierID: 42, Kind: ActivityMessageUsager, Author: "Élodie Dupré", At: at, Excerpt: "Bonjour,\nvoici mon titre de séjour."},
		{DossierID: 42, Kind: ActivityMessageInstructeur, Author: "agent@example.gouv.fr", At: at, Excerpt: "Merci."},
		{DossierID: 42, Kind: ActivityAvis, Author: "expert@example.gouv.fr", At: at, Excerpt: "Avis favorable."},
		{DossierID: 42, Kind: ActivityModification, Author: "Élodie Dupré", At: at},
	}
	return EmailData{
		DossierID:        42,
		ProcedureLibelle: "Autorisation provisoire de travail (APT) pour les étudiants",
		ServiceNom:       "Préfecture du Rhône",
		Prenom:           "Élodie",
		Nom:              "Dupré",
		RecipientNom:     "Jeanne Martin",
		Motivation:       "Le contrat de travail est conforme.",
		DecidedAt:        at,
		VerificationURL:  "https://aptflow.example/attestations/abc123",
		PublicURL:        "https://aptflow.example",
		Message:          "Bonjour,\n\nMerci de joindre votre titre de séjour.",
		Activities:       acts,
		Dossiers: []DossierSummary{
			{ID: 42, Prenom: "Élodie", Nom: "Dupré", State: "en_construction", LastActivityAt: at, Activities: acts},
			{ID: 43, Prenom: "Wei", Nom: "Zhang", State: "en_instruction", LastActivityAt: at, Activities: acts[:1]},
		},
		StaleDays: 30,
	}
}
