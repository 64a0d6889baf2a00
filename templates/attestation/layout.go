package attestation

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/jung-kurt/gofpdf"
	"rsc.io/qr/coding"
)

// The page, in millimetres. The layout flows top-down: the header, the
// title, the sections, the motivation, the signatory block and the
// verification block follow one another; the footer sits at a fixed place
// at the bottom. The body's type is set at the largest scale (scales) at
// which every field fits whole above the signatory and verification
// blocks with room for a few lines of motivation; the motivation takes what
// is left. Nothing is ever drawn below the footer.
const (
	family = "dejavu"
	ptMM   = 25.4 / 72 // millimetres in a point

	pageW     = 210.0
	pageH     = 297.0
	marginX   = 18.0
	marginTop = 14.0
	contentW  = pageW - 2*marginX

	labelW      = 48.0              // label column of a section row
	valueX      = marginX + labelW  // value column
	valueW      = contentW - labelW // its width
	rowLH       = 4.4               // line height of a row value (10 pt)
	rowGap      = 0.9               // between two rows
	headH       = 5.6               // section heading bar
	headGap     = 1.6               // above a heading bar; 1 mm below it
	footerLines = 3
	footerLH    = 3.3 // 7.5 pt
	footerTop   = pageH - 8 - footerLines*footerLH
	verifH      = 36.0                                // the verification block
	verifGap    = 4.0                                 // above the verification block
	bodyBottom  = footerTop - 3.5 - verifH - verifGap // nothing of the body goes below this line
	qrSize      = 30.0
	signW       = 92.0 // the signatory block, right-aligned
	signX       = pageW - marginX - signW

	// motivationMinLines is the room kept for the motivation when long
	// fields compete with it: the reason for a decision is worth more than
	// a larger type for the address.
	motivationMinLines = 4
	// fieldMaxLines caps a single field when even the smallest scale does
	// not fit it all: only values beyond the API's bounds get there.
	fieldMaxLines = 4
)

// scales are tried in turn, largest first, for the type of the header, the
// title and the sections, until every field fits whole.
var scales = [...]float64{1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6}

// Colours: the French state's blue for titles, greys for the rest.
var (
	blue     = [3]int{0, 0, 145}
	black    = [3]int{22, 22, 22}
	grey     = [3]int{96, 96, 96}
	barFill  = [3]int{236, 236, 244}
	ruleGrey = [3]int{190, 190, 190}
)

// motivationSizes are tried in turn, largest first, until the motivation
// fits; at the smallest it is cut with « … ».
var motivationSizes = [...]float64{10, 9.5, 9, 8.5, 8, 7.5, 7}

// errOverflow means the layout budget is wrong: a bug, caught by the tests.
var errOverflow = errors.New("layout overflows the page")

// layout draws one attestation on the current page of f. With dry set it
// draws nothing and only moves y: draw measures a scale that way first.
type layout struct {
	f     *gofpdf.Fpdf
	cov   *coverage
	y     float64
	scale float64 // of the type and line heights of the body
	dry   bool
	cut   bool // cap fields at fieldMaxLines and header fields at a few lines
	err   error
}

// row is one « label: value » line of a section, wrapped but not yet drawn.
type row struct {
	label string
	lines []string // the value, wrapped (capped only when cutting)
	shown int      // how many lines it may use; the last is cut with « … »
	bold  bool
	note  bool // a remark in small grey type rather than a value
}

// section is a titled group of rows.
type section struct {
	title string
	rows  []*row
}

func (l *layout) draw(d Data, qr *coding.Code) {
	motivation := clean(d.Motivation, true)
	// The largest scale at which everything above the motivation fits
	// whole; past the smallest, fields are capped and cut (values beyond
	// the API's bounds only).
	fits := false
	for _, s := range scales {
		l.scale, l.dry = s, true
		if l.body(d, motivation, false) {
			fits = true
			break
		}
	}
	l.dry = false
	if !l.body(d, motivation, !fits) {
		l.err = errOverflow
		return
	}
	if l.y > bodyBottom+0.01 {
		l.err = errOverflow
		return
	}
	l.verification(d, qr, l.y+verifGap)
	l.footer(d)
}

// body lays out (or, dry, measures) everything from the top of the page
// to the signatory block, and reports whether it fits above bodyBottom.
// With cut, fields are capped and the longest gives up lines until it fits.
func (l *layout) body(d Data, motivation string, cut bool) bool {
	l.y, l.cut = marginTop, cut
	l.header(d)
	l.title(d)
	sections := l.sections(d)
	sig := l.signatory(d, true)
	room := bodyBottom - l.y - sig
	if motivation != "" {
		room -= motivationLabelH + motivationMinLines*lineHeight(motivationSizes[len(motivationSizes)-1])
	}
	if cut {
		// While the rows do not fit, take one line from the longest field
		// (the first of the longest, so the outcome depends on the data
		// alone).
		for sectionsHeight(sections, l.scale) > room {
			var longest *row
			for _, s := range sections {
				for _, r := range s.rows {
					if longest == nil || r.shown > longest.shown {
						longest = r
					}
				}
			}
			if longest.shown <= 1 {
				return false
			}
			longest.shown--
		}
	} else if sectionsHeight(sections, l.scale) > room {
		return false
	}
	if l.dry {
		return true
	}
	for _, s := range sections {
		l.section(s)
	}
	if motivation != "" {
		l.motivation(motivation, bodyBottom-l.y-sig)
	}
	l.signatory(d, false)
	return true
}

// sections wraps the rows of the holder, the permit, the employer, the job
// and the decision.
func (l *layout) sections(d Data) []section {
	naissance := "le " + dateFR(d.DateNaissance)
	if lieu := clean(d.LieuNaissance, false); lieu != "" {
		naissance += " à " + lieu
	}
	decision := dateTimeFR(d.DecidedAt) + " — autorisation accordée"
	sections := []section{
		{"Titulaire", []*row{
			l.row("Nom", d.Nom, true),
			l.row("Prénom(s)", d.Prenom, true),
			l.row("Né(e)", naissance, false),
			l.row("Nationalité", d.Nationalite, false),
			l.row("Établissement d'enseignement", d.Etablissement, false),
		}},
		{"Titre de séjour", []*row{
			l.row("Numéro", d.TitreSejourNumero, false),
			l.row("Valable jusqu'au", dateFR(d.TitreSejourExpireLe), false),
		}},
		{"Employeur", []*row{
			l.row("Raison sociale", d.EmployeurRaisonSociale, true),
			l.row("SIRET", siretFR(clean(d.EmployeurSiret, false)), false),
			l.multiRow("Adresse", d.EmployeurAdresse),
		}},
		{"Emploi", []*row{
			l.row("Emploi occupé", d.Emploi, false),
			l.row("Durée hebdomadaire", hoursFR(d.HeuresHebdo), false),
			l.row("Période", "du "+dateFR(d.DateDebut)+" au "+dateFR(d.DateFin), false),
		}},
		{"Décision", []*row{
			l.row("Dossier nº", strconv.FormatInt(d.DossierID, 10), true),
			l.row("Décision du", decision, false),
		}},
	}
	if !l.cov.drawable(clean(d.Prenom, false) + clean(d.Nom, false)) {
		// Right under the name it speaks of.
		titulaire := &sections[0]
		titulaire.rows = slices.Insert(titulaire.rows, 2, l.noteRow(missingGlyphsNote))
	}
	return sections
}

// header draws the République française block on the left and the issuing
// service on the right.
func (l *layout) header(d Data) {
	l.color(black)
	y := l.y
	l.font("B", 10.5)
	y = l.lines(marginX, y, 60, 4.6, []string{"RÉPUBLIQUE", "FRANÇAISE"}, "L")
	l.font("", 7.5)
	y = l.lines(marginX, y+1.2, 60, 3.3, []string{"Liberté", "Égalité", "Fraternité"}, "L")
	left := y

	const rightX, rightW = 100.0, pageW - marginX - 100.0
	y = l.y
	l.font("B", 10)
	y = l.lines(rightX, y, rightW, 4.4, l.wrapField(orNone(clean(d.ServiceNom, false)), rightW, 2), "R")
	l.color(grey)
	l.font("", 8.5)
	if addr := clean(d.ServiceAdresse, true); addr != "" {
		y = l.lines(rightX, y+0.8, rightW, 3.7, l.wrapField(addr, rightW, 3), "R")
	}
	l.y = max(left, y) + 3.5
	l.rule(l.y)
	l.y += 5
}

// title draws the document's title, the holder's name, the procedure and
// the legal basis.
func (l *layout) title(d Data) {
	l.color(blue)
	l.font("B", 15)
	l.y = l.lines(marginX, l.y, contentW, 7, []string{"AUTORISATION PROVISOIRE DE TRAVAIL"}, "C")
	l.color(black)
	l.font("B", 11.5)
	name := strings.TrimSpace(clean(d.Prenom, false) + " " + clean(d.Nom, false))
	l.y = l.lines(marginX, l.y+0.5, contentW, 5.6, l.wrapField("délivrée à "+orNone(name), contentW, 1), "C")
	if lib := clean(d.ProcedureLibelle, false); lib != "" {
		l.color(grey)
		l.font("", 9)
		l.y = l.lines(marginX, l.y+0.5, contentW, 4, l.wrapField(lib, contentW, 2), "C")
	}
	l.color(black)
	l.font("", 8.5)
	const legal = "En application du code du travail, notamment de ses articles L. 5221-2, L. 5221-5 et " +
		"R. 5221-1 et suivants, l'autorité désignée ci-dessus autorise l'étudiant étranger " +
		"désigné ci-dessous à exercer, à titre accessoire à ses études, l'activité salariée " +
		"décrite dans la présente autorisation, auprès de l'employeur et pendant la période indiqués."
	l.y = l.lines(marginX, l.y+2.5, contentW, 3.8, l.wrapAll(legal, contentW, 0), "L")
	l.y += 1
}

// wrapField wraps a value of the header or the title: whole, or when
// cutting, in at most maxLines lines.
func (l *layout) wrapField(text string, w float64, maxLines int) []string {
	if l.cut {
		return l.wrap(text, w, maxLines)
	}
	return l.wrapAll(text, w, 0)
}

// row wraps a single-line field for the value column.
func (l *layout) row(label, value string, bold bool) *row {
	return l.wrapRow(label, clean(value, false), bold)
}

// multiRow wraps a field whose line breaks are kept (an address).
func (l *layout) multiRow(label, value string) *row {
	return l.wrapRow(label, clean(value, true), false)
}

func (l *layout) wrapRow(label, value string, bold bool) *row {
	r := &row{label: label, bold: bold}
	l.rowFont(r)
	if !l.cut {
		r.lines = l.wrapAll(orNone(value), valueW, 0)
		r.shown = len(r.lines)
		return r
	}
	// One line more than the cap tells cut whether the text goes on; the
	// row shows at most fieldMaxLines and cuts the last.
	r.lines = l.wrapAll(orNone(value), valueW, fieldMaxLines+1)
	r.shown = min(len(r.lines), fieldMaxLines)
	return r
}

// missingGlyphsNote follows a name the fonts cannot draw in full. The text
// layer of the PDF still holds the exact name; the verification page shows
// it to the employer.
const missingGlyphsNote = "Ce nom comporte des caractères que ce document ne peut pas afficher : " +
	"il figure en toutes lettres sur la page de vérification (voir ci-dessous)."

// noteRow is a remark under the rows of a section, in the value column.
func (l *layout) noteRow(text string) *row {
	r := &row{note: true}
	l.rowFont(r)
	r.lines = l.wrapAll(text, valueW, 3)
	r.shown = len(r.lines)
	return r
}

// rowFont selects the font of a row's value.
func (l *layout) rowFont(r *row) {
	switch {
	case r.note:
		l.color(grey)
		l.font("", 8.5)
	case r.bold:
		l.color(black)
		l.font("B", 10)
	default:
		l.color(black)
		l.font("", 10)
	}
}

func sectionsHeight(sections []section, scale float64) float64 {
	h := 0.0
	for _, s := range sections {
		h += (headGap + headH + 1) * scale
		for _, r := range s.rows {
			h += (float64(r.shown)*rowLH + rowGap) * scale
		}
	}
	return h
}

func (l *layout) section(s section) {
	f := l.f
	l.y += headGap * l.scale
	f.SetFillColor(barFill[0], barFill[1], barFill[2])
	f.Rect(marginX, l.y, contentW, headH*l.scale, "F")
	l.color(blue)
	l.font("B", 9)
	l.y = l.lines(marginX+2, l.y, contentW-4, headH, []string{strings.ToUpper(s.title)}, "L") + l.scale
	for _, r := range s.rows {
		l.color(grey)
		l.font("", 8.5)
		// A smaller font in a cell of the same height sits higher: lower it
		// by the difference so label and value share a baseline.
		l.lines(marginX+2, l.y+0.3*(10-8.5)*ptMM*l.scale, labelW-3, rowLH, []string{r.label}, "L")
		l.rowFont(r)
		l.y = l.lines(valueX, l.y, valueW, rowLH, l.cutLines(r.lines, r.shown, valueW), "L") + rowGap*l.scale
	}
}

const motivationLabelH = 5.0

// motivation draws the motivation over the full width, in the largest size
// that fits in room, cut with « … » at the smallest: a motivation that
// long is the decision's, which the applicant has in full; the
// attestation's business is the authorisation.
func (l *layout) motivation(text string, room float64) {
	l.y += 0.5
	l.color(grey)
	l.font("", 8.5)
	l.linesAbs(marginX+2, l.y, labelW-3, motivationLabelH, []string{"Motivation"}, "L")
	l.y += motivationLabelH
	room -= motivationLabelH + 0.5
	const x, w = marginX + 2, contentW - 2
	var lines []string
	size := motivationSizes[0]
	for _, size = range motivationSizes {
		if size > 10*l.scale && size != motivationSizes[len(motivationSizes)-1] {
			continue // no larger than the rows' values
		}
		l.f.SetFont(family, "", size)
		maxLines := max(1, int(room/lineHeight(size)))
		lines = l.wrapAll(text, w, maxLines+1)
		if len(lines) <= maxLines {
			break
		}
		// Too long at this size; at the smallest, cut it.
		lines = l.cutLines(lines, maxLines, w)
	}
	l.color(black)
	l.y = l.linesAbs(x, l.y, w, lineHeight(size), lines, "L")
}

func lineHeight(size float64) float64 { return size * 0.44 }

// signatory draws (or with measure, only measures) the signatory block,
// right-aligned under the body: the date of the decision, the signatory's
// capacity and name (the procedure's signataire; the service without one),
// and, when the file is signed, that the signature is electronic. It
// returns its height.
func (l *layout) signatory(d Data, measure bool) float64 {
	dry := l.dry
	l.dry = dry || measure
	defer func() { l.dry = dry }()
	top := l.y
	y := top + 4
	qualite, nom := clean(d.SignataireQualite, false), clean(d.SignataireNom, false)
	if nom == "" {
		qualite, nom = "Pour l'autorité compétente,", orNone(clean(d.ServiceNom, false))
	}
	l.color(black)
	l.font("", 9.5)
	y = l.lines(signX, y, signW, 4.2, []string{"Fait le " + dayFR(d.DecidedAt) + ","}, "C")
	if qualite != "" {
		y = l.lines(signX, y, signW, 4.2, l.wrapField(qualite, signW, 3), "C")
	}
	l.font("B", 10)
	y = l.lines(signX, y+1, signW, 4.6, l.wrapField(nom, signW, 2), "C")
	if d.Signed {
		l.color(grey)
		l.font("", 8)
		y = l.lines(signX, y+0.5, signW, 3.6, []string{"Signé électroniquement (signature du document PDF)"}, "C")
	}
	if !l.dry {
		l.y = y
	}
	return y - top
}

// verification draws, from top, the QR code, the code in clear and how an
// employer checks the attestation.
func (l *layout) verification(d Data, qr *coding.Code, top float64) {
	f := l.f
	l.scale = 1 // fixed size: the block's height is budgeted
	f.SetDrawColor(ruleGrey[0], ruleGrey[1], ruleGrey[2])
	f.SetLineWidth(0.3)
	f.Rect(marginX, top, contentW, verifH, "D")
	drawQR(f, qr, marginX+3, top+3, qrSize, d.VerificationURL)

	x := marginX + qrSize + 7
	w := pageW - marginX - 4 - x
	y := top + 2.5
	l.color(blue)
	l.font("B", 10)
	y = l.lines(x, y, w, 5, []string{"Vérification par l'employeur"}, "L")
	l.color(black)
	l.font("", 8.5)
	y = l.lines(x, y+0.5, w, 3.8, l.wrap("Avant l'embauche, scannez le code QR ci-contre ou ouvrez "+
		"l'adresse ci-dessous : la page indique si l'autorisation est valide aujourd'hui et "+
		"permet de vérifier que ce fichier est bien celui qui a été délivré.", w, 3), "L")
	l.color(blue)
	url := clean(d.VerificationURL, false)
	for _, line := range l.wrap(url, w, 2) {
		f.SetXY(x, y+0.5)
		f.CellFormat(w, 3.8, line, "", 0, "L", false, 0, d.VerificationURL)
		y += 3.8
	}
	l.color(black)
	l.font("", 9)
	label := "Code de vérification : "
	lw := f.GetStringWidth(label)
	l.lines(x, y+1.5, lw, 5, []string{label}, "L")
	// The code is typed from paper: it is printed whole, on one line, in
	// the largest size that holds it (a code of wide letters, « WWWW MMMM
	// … », needs a smaller one than most).
	code := orNone(groupCode(clean(d.VerificationCode, false)))
	size := 11.0
	l.font("B", size)
	for f.GetStringWidth(code) > w-lw && size > codeMinSize {
		size -= 0.5
		l.font("B", size)
	}
	l.lines(x+lw, y+1.5, w-lw, 5, l.wrap(code, w-lw, 1), "L")
}

// codeMinSize is the smallest type of the verification code: a stored
// code (32 letters and digits, however wide) fits at it; a longer one is
// cut with « … ».
const codeMinSize = 8.0

// groupCode prints a verification code in upper-case groups of four, as a
// person reads it aloud or types it (« ABCD EFGH … »); the page takes it in
// any case, with or without the spaces. A code with anything but letters
// and digits is printed as given.
func groupCode(code string) string {
	if code == "" || strings.IndexFunc(code, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) >= 0 {
		return code
	}
	code = strings.ToUpper(code)
	var b strings.Builder
	for i := 0; i < len(code); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(code[i:min(i+4, len(code))])
	}
	return b.String()
}

// footer draws the closing notice. It must fit whole in its lines: a cut
// footer is a layout bug.
func (l *layout) footer(d Data) {
	l.rule(footerTop - 2)
	l.color(grey)
	l.font("", 7.5)
	text := "Cette autorisation est personnelle. Elle ne vaut que pour l'employeur, l'emploi et la période " +
		"indiqués et ne tient pas lieu de titre de séjour. Document établi électroniquement le " +
		dayFR(d.DecidedAt) + " (dossier nº " + strconv.FormatInt(d.DossierID, 10) + ")"
	if d.Signed {
		text += ", signé électroniquement ; son authenticité se vérifie en ligne, à l'adresse ci-dessus."
	} else {
		text += " ; son authenticité se vérifie en ligne, à l'adresse ci-dessus."
	}
	lines := l.wrapAll(text, contentW, footerLines+1)
	if len(lines) > footerLines {
		l.err = errOverflow
		return
	}
	l.lines(marginX, footerTop, contentW, footerLH, lines, "C")
}

func (l *layout) rule(y float64) {
	if l.dry {
		return
	}
	l.f.SetDrawColor(ruleGrey[0], ruleGrey[1], ruleGrey[2])
	l.f.SetLineWidth(0.3)
	l.f.Line(marginX, y, pageW-marginX, y)
}

// font selects the font, regular ("") or bold ("B"), at size times the
// scale of the layout.
func (l *layout) font(style string, size float64) {
	l.f.SetFont(family, style, size*l.scale)
}

// color sets the colour of the text.
func (l *layout) color(c [3]int) {
	l.f.SetTextColor(c[0], c[1], c[2])
}

// lines draws lines, one per cell of height lh times the scale, from (x,
// y), and returns the y below the last. A dry layout only measures.
func (l *layout) lines(x, y, w, lh float64, lines []string, align string) float64 {
	return l.linesAbs(x, y, w, lh*l.scale, lines, align)
}

// linesAbs is lines with a line height that does not scale.
func (l *layout) linesAbs(x, y, w, lh float64, lines []string, align string) float64 {
	for _, s := range lines {
		if !l.dry {
			l.f.SetXY(x, y)
			l.f.CellFormat(w, lh, s, "", 0, align, false, 0, "")
		}
		y += lh
	}
	return y
}

// wrap splits text into lines no wider than w in the current font, at most
// maxLines (at least 1) of them; when the text goes on, the last line ends
// with « … ».
func (l *layout) wrap(text string, w float64, maxLines int) []string {
	return l.cutLines(l.wrapAll(text, w, maxLines+1), maxLines, w)
}

// cutLines keeps the first n (at least 1) of lines, each at most w wide; when it
// drops any, the last kept line ends with « … » (a blank line between
// paragraphs is dropped rather than left holding « … » alone).
func (l *layout) cutLines(lines []string, n int, w float64) []string {
	if len(lines) <= n {
		return lines
	}
	for n > 1 && lines[n-1] == "" {
		n--
	}
	out := append([]string(nil), lines[:n]...)
	out[n-1] = l.ellipsize(out[n-1], w)
	return out
}

// wrapAll splits text into lines no wider than w in the current font,
// breaking at spaces, and inside a word only when the word alone is wider
// than w. It stops after limit lines (0: no limit).
//
// It measures with GetStringWidth, which counts a glyph the font lacks (CJK,
// Arabic) at the font's missing width — the width the PDF viewer draws it
// with — where gofpdf's own MultiCell and SplitText count it as zero and
// let such a line run off the page.
func (l *layout) wrapAll(text string, w float64, limit int) []string {
	f := l.f
	space := f.GetStringWidth(" ")
	var out []string
	full := func() bool { return limit > 0 && len(out) >= limit }
	for _, para := range strings.Split(text, "\n") {
		var (
			line  strings.Builder
			width float64
		)
		flush := func() {
			out = append(out, line.String())
			line.Reset()
			width = 0
		}
		for _, word := range strings.Split(para, " ") {
			if word == "" {
				continue
			}
			ww := f.GetStringWidth(word)
			if ww > w { // a word wider than the column: break it anywhere
				if line.Len() > 0 {
					flush()
				}
				for _, r := range word {
					rw := f.GetStringWidth(string(r))
					if line.Len() > 0 && width+rw > w {
						flush()
						if full() {
							return out
						}
					}
					line.WriteRune(r)
					width += rw
				}
				continue
			}
			switch {
			case line.Len() == 0:
				line.WriteString(word)
				width = ww
			case width+space+ww <= w:
				line.WriteByte(' ')
				line.WriteString(word)
				width += space + ww
			default:
				flush()
				if full() {
					return out
				}
				line.WriteString(word)
				width = ww
			}
		}
		flush()
		if full() {
			return out
		}
	}
	return out
}

// ellipsize ends line with « … », shortening it until it fits in w.
func (l *layout) ellipsize(line string, w float64) string {
	r := []rune(strings.TrimRight(line, " "))
	for len(r) > 0 && l.f.GetStringWidth(string(r)+"…") > w {
		r = r[:len(r)-1]
	}
	return strings.TrimRight(string(r), " ,;:.") + "…"
}
