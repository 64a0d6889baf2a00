package attestation

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-fonts/dejavu/dejavusanscondensed"
	"github.com/go-fonts/dejavu/dejavusanscondensedbold"
	"github.com/jung-kurt/gofpdf"

	"github.com/aptflow/aptflow/workflow"
)

// Data is everything printed on the attestation. Strings are UTF-8; control
// characters are dropped and over-long values are shortened with « … » so the
// attestation always fits on one A4 page. Dates are printed in French:
// calendar dates as they are, the decision's instant in the Europe/Paris
// time zone.
type Data struct {
	DossierID           int64
	ServiceNom          string // e.g. « Préfecture du Rhône »
	ServiceAdresse      string // multi-line allowed (\n)
	ProcedureLibelle    string
	Nom, Prenom         string
	DateNaissance       workflow.Date
	LieuNaissance       string
	Nationalite         string
	TitreSejourNumero   string
	TitreSejourExpireLe workflow.Date
	Etablissement       string

	EmployeurRaisonSociale string
	EmployeurSiret         string // 14 digits, printed « 732 829 320 00074 »
	EmployeurAdresse       string // multi-line allowed (\n)

	Emploi             string
	HeuresHebdo        float64 // printed with a decimal comma: 17.5 is « 17,5 h »
	DateDebut, DateFin workflow.Date

	// DecidedAt is when the dossier was accepted. It is also the PDF's
	// creation and modification date, which keeps the output deterministic.
	DecidedAt  time.Time
	Motivation string // optional, multi-line allowed (\n)

	// SignataireNom and SignataireQualite are the procedure's signatory
	// (« Pour le préfet et par délégation, la cheffe du bureau des
	// étrangers »), printed under the body; without them the service signs.
	// Never an agent's e-mail.
	SignataireNom, SignataireQualite string
	// Signed says that the file will carry an electronic signature
	// (Signer): the signatory block and the footer say so.
	Signed bool

	VerificationCode string // printed in clear, in groups of four, next to the QR code
	VerificationURL  string // encoded in the QR code
}

// Renderer renders attestations. It holds the parsed fonts; a Renderer is
// safe for concurrent use by several goroutines.
type Renderer struct {
	// regular and bold are the TrueType faces, parsed once and shared
	// read-only by the documents (gofpdf's UTF8Font, a patch of ours:
	// third_party/gofpdf).
	regular, bold *gofpdf.UTF8Font
	cov           *coverage // the runes both faces can draw
}

// NewRenderer parses the embedded fonts, then renders a sample attestation,
// so that a broken asset fails the start of the process rather than the
// first accepted dossier.
//
// The fonts are DejaVu Sans and DejaVu Sans Bold (github.com/go-fonts/dejavu,
// the DejaVu fonts' own licence): they draw every letter of the Latin
// scripts, Vietnamese included (ễ, ị, ư), as well as Greek and Cyrillic,
// and their « - » is a hyphen. The Go fonts lacked Latin Extended
// Additional, so Vietnamese names printed as empty boxes, and drew « - »
// as a minus sign.
func NewRenderer() (*Renderer, error) {
	return newRenderer(dejavusanscondensed.TTF, dejavusanscondensedbold.TTF)
}

func newRenderer(regular, bold []byte) (*Renderer, error) {
	// Parsing each face with sfnt first also checks that it is a font:
	// gofpdf panics on some bad ones.
	cov, err := newCoverage(regular)
	if err != nil {
		return nil, fmt.Errorf("attestation: regular face: %w", err)
	}
	boldCov, err := newCoverage(bold)
	if err != nil {
		return nil, fmt.Errorf("attestation: bold face: %w", err)
	}
	cov.intersect(boldCov)
	r := &Renderer{cov: cov}
	if r.regular, err = parseFont("", regular); err != nil {
		return nil, err
	}
	if r.bold, err = parseFont("B", bold); err != nil {
		return nil, err
	}
	if _, err := r.Render(sampleData()); err != nil {
		return nil, fmt.Errorf("attestation: render sample: %w", err)
	}
	return r, nil
}

// parseFont parses one face of the family, once for every document.
func parseFont(style string, ttf []byte) (*gofpdf.UTF8Font, error) {
	font, err := gofpdf.ParseUTF8Font(family, style, ttf)
	if err != nil {
		return nil, fmt.Errorf("attestation: parse font %q: %w", style, err)
	}
	return font, nil
}

// Render returns the attestation for d as a one-page A4 PDF. The output is a
// function of d alone: the same Data gives the same bytes. It fails when
// DecidedAt or VerificationURL is missing.
func (r *Renderer) Render(d Data) (pdf []byte, err error) {
	if d.DecidedAt.IsZero() {
		return nil, errors.New("attestation: DecidedAt is required")
	}
	if d.VerificationURL == "" {
		return nil, errors.New("attestation: VerificationURL is required")
	}
	qr, err := encodeQR(d.VerificationURL)
	if err != nil {
		return nil, fmt.Errorf("attestation %d: %w", d.DossierID, err)
	}

	// gofpdf panics on some inputs it cannot handle (a malformed font, an
	// unexpected rune); a job worker must get an error, not a crash.
	defer func() {
		if p := recover(); p != nil {
			pdf, err = nil, fmt.Errorf("attestation: gofpdf panic: %v", p)
		}
	}()

	f := gofpdf.New("P", "mm", "A4", "")
	f.SetCatalogSort(true)
	// gofpdf writes these dates without a zone offset, which readers take
	// as UTC.
	f.SetCreationDate(d.DecidedAt.UTC())
	f.SetModificationDate(d.DecidedAt.UTC())
	f.SetAutoPageBreak(false, 0) // one page, always: the layout budgets its space
	f.SetMargins(marginX, marginTop, marginX)
	f.SetCellMargin(0)
	f.AddUTF8FontParsed(r.regular)
	f.AddUTF8FontParsed(r.bold)

	f.SetTitle("Autorisation provisoire de travail — dossier nº "+strconv.FormatInt(d.DossierID, 10), true)
	f.SetAuthor(clean(d.ServiceNom, false), true)
	f.SetSubject("Autorisation provisoire de travail (APT) pour un étudiant étranger, décision du "+dayFR(d.DecidedAt), true)
	f.SetKeywords("APT, autorisation provisoire de travail, étudiant étranger, code du travail L. 5221-5", true)
	f.SetCreator("aptflow", true)
	f.SetLang("fr-FR")

	f.AddPage()
	l := &layout{f: f, cov: r.cov, scale: 1}
	l.draw(d, qr)
	if err := l.err; err != nil {
		return nil, fmt.Errorf("attestation %d: %w", d.DossierID, err)
	}
	if n := f.PageCount(); n != 1 {
		return nil, fmt.Errorf("attestation %d: %d pages, want 1", d.DossierID, n)
	}
	var buf bytes.Buffer
	buf.Grow(64 << 10)
	if err := f.Output(&buf); err != nil {
		return nil, fmt.Errorf("attestation %d: %w", d.DossierID, err)
	}
	return buf.Bytes(), nil
}

// sampleData is what NewRenderer renders to check its assets. It uses the
// scripts the fonts must cover.
func sampleData() Data {
	day := time.Date(2026, time.March, 12, 13, 30, 0, 0, time.UTC)
	return Data{
		DossierID:              1,
		ServiceNom:             "Préfecture",
		ServiceAdresse:         "1 rue de l'Exemple\n69000 Lyon",
		ProcedureLibelle:       "Autorisation provisoire de travail (APT) pour les étudiants",
		Nom:                    "Œdipe-Łukasiewicz",
		Prenom:                 "Élodie Ørjan",
		DateNaissance:          workflow.Date{Year: 2006, Month: time.March, Day: 12},
		LieuNaissance:          "Θεσσαλονίκη",
		Nationalite:            "Україна",
		TitreSejourNumero:      "0000000000",
		TitreSejourExpireLe:    workflow.Date{Year: 2027, Month: time.March, Day: 12},
		Etablissement:          "Université",
		EmployeurRaisonSociale: "Employeur",
		EmployeurSiret:         "73282932000074",
		EmployeurAdresse:       "1 place de l'Exemple\n69000 Lyon",
		Emploi:                 "Employé",
		HeuresHebdo:            17.5,
		DateDebut:              workflow.Date{Year: 2026, Month: time.March, Day: 12},
		DateFin:                workflow.Date{Year: 2026, Month: time.September, Day: 12},
		DecidedAt:              day,
		Motivation:             "Motivation.",
		SignataireNom:          "Signataire",
		SignataireQualite:      "Pour le préfet et par délégation,",
		Signed:                 true,
		VerificationCode:       "SAMPLE",
		VerificationURL:        "https://example.invalid/attestations/SAMPLE",
	}
}
