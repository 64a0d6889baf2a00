package attestation

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/font/gofont/goregular"

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
	DecidedAt        time.Time
	Instructeur      string // optional: e-mail or name of the deciding agent
	Motivation       string // optional, multi-line allowed (\n)
	VerificationCode string // printed in clear next to the QR code
	VerificationURL  string // encoded in the QR code
}

// Renderer renders attestations. It holds the parsed fonts; a Renderer is
// safe for concurrent use by several goroutines.
type Renderer struct {
	// font is the TrueType font, parsed once and shared read-only by the
	// documents (gofpdf's UTF8Font, a patch of ours: third_party/gofpdf).
	font *gofpdf.UTF8Font
	cov  *coverage // the runes the font can draw
}

// NewRenderer parses the embedded fonts, then renders a sample attestation, so that a broken asset fails the start of
// the process rather than the first accepted dossier.
func NewRenderer() (*Renderer, error) {
	return newRenderer(goregular.TTF)
}

func newRenderer(font []byte) (*Renderer, error) {
	cov, err := newCoverage(font)
	if err != nil {
		return nil, fmt.Errorf("attestation: %w", err)
	}
	parsed, err := gofpdf.ParseUTF8Font(family, "", font)
	if err != nil {
		return nil, fmt.Errorf("attestation: parse font: %w", err)
	}
	r := &Renderer{
		font: parsed,
		cov:  cov,
	}
	if _, err := r.Render(sampleData()); err != nil {
		return nil, fmt.Errorf("attestation: render sample: %w", err)
	}
	return r, nil
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
	f.AddUTF8FontParsed(r.font)

	f.SetTitle("Autorisation provisoire de travail — dossier nº "+strconv.FormatInt(d.DossierID, 10), true)
	f.SetAuthor(clean(d.ServiceNom, false), true)
	f.SetSubject("Autorisation provisoire de travail pour un étudiant étranger, décision du "+dayFR(d.DecidedAt), true)
	f.SetCreator("aptflow", true)

	f.AddPage()
	l := &layout{f: f, cov: r.cov}
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
		VerificationCode:       "SAMPLE",
		VerificationURL:        "https://example.invalid/attestations/SAMPLE",
	}
}
