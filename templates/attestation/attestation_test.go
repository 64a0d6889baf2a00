package attestation

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-fonts/dejavu/dejavusanscondensed"
	"github.com/go-fonts/dejavu/dejavusanscondensedbold"
	"github.com/jung-kurt/gofpdf"
	"rsc.io/qr/coding"

	"github.com/aptflow/aptflow/workflow"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.pdf from the current output")

const goldenPath = "testdata/golden.pdf"

// setup returns a Renderer, failing the test if the assets do not load.
func setup(t testing.TB) *Renderer {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	return r
}

// render renders d, failing the test on error.
func render(t testing.TB, r *Renderer, d Data) []byte {
	t.Helper()
	pdf, err := r.Render(d)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return pdf
}

// testData is the attestation of the golden file.
func testData() Data {
	return Data{
		DossierID:              42,
		ServiceNom:             "Préfecture du Rhône",
		ServiceAdresse:         "Direction des migrations et de l'intégration\n18 rue de Bonnel\n69003 Lyon",
		ProcedureLibelle:       "Autorisation provisoire de travail (APT) pour les étudiants",
		Nom:                    "Dupré",
		Prenom:                 "Élodie",
		DateNaissance:          workflow.Date{Year: 2003, Month: time.March, Day: 1},
		LieuNaissance:          "Montréal (Canada)",
		Nationalite:            "canadienne",
		TitreSejourNumero:      "6912345678",
		TitreSejourExpireLe:    workflow.Date{Year: 2026, Month: time.September, Day: 30},
		Etablissement:          "Université Claude Bernard Lyon 1",
		EmployeurRaisonSociale: "Boulangerie Pâtisserie Les Délices de Fourvière",
		EmployeurSiret:         "73282932000074",
		EmployeurAdresse:       "12 montée Saint-Barthélemy\n69005 Lyon",
		Emploi:                 "Vendeuse en boulangerie",
		HeuresHebdo:            17.5,
		DateDebut:              workflow.Date{Year: 2025, Month: time.April, Day: 1},
		DateFin:                workflow.Date{Year: 2025, Month: time.August, Day: 31},
		DecidedAt:              time.Date(2025, time.March, 12, 14, 5, 0, 0, workflow.Paris()),
		SignataireNom:          "Claire Martin-Lefèvre",
		SignataireQualite:      "Pour le préfet et par délégation, la cheffe du bureau des étrangers",
		Motivation: "Le contrat de travail respecte la durée maximale autorisée pour un étudiant " +
			"étranger. Les pièces justificatives sont complètes.",
		VerificationCode: "k7q2m9xd4hpab3cdefghjkmnpqrstvwx",
		VerificationURL:  "https://aptflow.example.fr/attestations/k7q2m9xd4hpab3cdefghjkmnpqrstvwx",
	}
}

// longData fills every field to 200 characters and the motivation to 5000:
// far beyond what the API accepts, so the page budget is tested at its limit.
func longData() Data {
	d := testData()
	words := func(n int) string { // words of varied length, n runes
		s := strings.Repeat("Établissement Œdipe-Łukasiewicz de la Croix-Rousse et ", n/50+1)
		return strings.TrimSpace(string([]rune(s)[:n]))
	}
	nospace := strings.Repeat("W", 200) // no break opportunity at all
	d.ServiceNom, d.ServiceAdresse, d.ProcedureLibelle = words(200), words(200)+"\n"+words(200), words(200)
	d.Nom, d.Prenom, d.LieuNaissance, d.Nationalite = nospace, words(200), words(200), words(200)
	d.TitreSejourNumero, d.Etablissement = nospace, words(200)
	d.EmployeurRaisonSociale, d.EmployeurSiret, d.EmployeurAdresse = words(200), nospace, words(200)+"\n"+words(200)
	d.Emploi, d.SignataireQualite, d.VerificationCode = words(200), words(200), nospace
	d.SignataireNom = words(200)
	var m strings.Builder
	for i := 0; m.Len() < 5000; i++ {
		m.WriteString("Motivation de la décision, paragraphe développé. ")
		if i%7 == 6 {
			m.WriteString("\n\n")
		}
	}
	d.Motivation = m.String() + "FINDELAMOTIVATION"
	d.VerificationURL = "https://aptflow.example.fr/attestations/" + strings.Repeat("A", 160)
	return d
}

func TestGolden(t *testing.T) {
	t.Parallel()
	got := render(t, setup(t), testData())
	if *update {
		if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run `go test ./templates/attestation/ -run TestGolden -update` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		out := filepath.Join(t.TempDir(), "got.pdf")
		_ = os.WriteFile(out, got, 0o644)
		t.Fatalf("output differs from %s (%d bytes, want %d); got is in %s. If the change is intended, "+
			"look at the page, then run `go test ./templates/attestation/ -run TestGolden -update`",
			goldenPath, len(got), len(want), out)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	r := setup(t)
	// A long public URL takes a version of 7 or more (45 modules and up),
	// which also carries version information blocks.
	longURL := testData()
	longURL.VerificationURL = "https://demarches.prefecture-du-rhone.interieur.gouv.fr/services/aptflow/attestations/" + strings.Repeat("K7Q2M9XD4HPA", 8)
	for name, d := range map[string]Data{"OK": testData(), "Long": longData(), "LongURL": longURL} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b := render(t, r, d), render(t, r, d)
			if !bytes.Equal(a, b) {
				t.Fatal("two renders of the same Data differ")
			}
			// A new Renderer gives the same bytes too: nothing depends on
			// the Renderer's history.
			if c := render(t, setup(t), d); !bytes.Equal(a, c) {
				t.Fatal("renders by two Renderers differ")
			}
		})
	}
}

// TestConcurrent is meant for -race: the documents of one Renderer share
// its parsed font, and gofpdf pads the font bytes it subsets in place. Each
// document uses other characters (Latin, Greek, Cyrillic, another length),
// so a glyph or width leaking from one document into another changes its
// bytes.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	r := setup(t)
	names := []string{"Dupré", "Παπαδοπούλου", "Шевченко", "Łukasiewicz-Øvergård", "N'Diaye", "Nguyễn"}
	data := make([]Data, len(names))
	want := make([][]byte, len(names))
	for i, name := range names {
		data[i] = testData()
		data[i].DossierID = int64(100 + i)
		data[i].Nom = name
		want[i] = render(t, r, data[i])
	}
	const rounds = 4
	got := make([][]byte, rounds*len(names))
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i], errs[i] = r.Render(data[i%len(names)]) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("render %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], want[i%len(names)]) {
			t.Errorf("concurrent render %d (%s) differs from the sequential one", i, names[i%len(names)])
		}
	}
	// And the fonts of two documents with different characters differ: the
	// comparison above would not see a subset that ignores them.
	if bytes.Equal(want[0], want[1]) {
		t.Error("two attestations with different names are identical")
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	d := testData()
	pdf := render(t, setup(t), d)

	requireContains(t, "pdfinfo", pdfinfo(t, pdf),
		"Pages:           1\n",
		"Title:           Autorisation provisoire de travail — dossier nº 42\n",
		"Author:          Préfecture du Rhône\n",
		"Creator:         aptflow\n",
		"Subject:         Autorisation provisoire de travail (APT) pour un étudiant étranger, décision du 12 mars 2025\n",
		"Page size:       595.28 x 841.89 pts (A4)\n",
		"CreationDate:    Wed Mar 12 13:05:00 2025 UTC\n",
	)

	requireContains(t, "pdftotext", pdftotext(t, pdf),
		"AUTORISATION PROVISOIRE DE TRAVAIL",
		"RÉPUBLIQUE",
		"Préfecture du Rhône",
		"Élodie Dupré",
		"Boulangerie Pâtisserie Les Délices de Fourvière",
		"732 829 320 00074",
		"Dossier nº",
		"\n42\n",
		"le 1er mars 2003 à Montréal (Canada)",
		"30 septembre 2026",
		"17,5 h",
		"du 1er avril 2025 au 31 août 2025",
		"12 mars 2025 à 14 h 05",
		"Claire Martin-Lefèvre",
		"Pour le préfet et par délégation, la cheffe du bureau des",
		"Fait le 12 mars 2025,",
		// The footer's last sentence, whole.
		"son authenticité se vérifie en ligne, à l'adresse ci-dessus.",
		"Les pièces justificatives",
		"K7Q2 M9XD 4HPA B3CD EFGH JKMN PQRS TVWX",
		d.VerificationURL,
		"L. 5221-5",
	)
}

// TestDocument checks what a reader's document properties show: a real
// bold face embedded beside the regular one (not a stroked regular), and
// the document's language for screen readers.
func TestDocument(t *testing.T) {
	t.Parallel()
	pdf := render(t, setup(t), testData())
	fonts, _ := run(t, pdf, "poppler-utils", "pdffonts", "PDF")
	for _, name := range []string{"utf8dejavu ", "utf8dejavuB "} {
		line := ""
		for l := range strings.Lines(fonts) {
			if strings.HasPrefix(l, name) {
				line = l
			}
		}
		if f := strings.Fields(line); len(f) < 6 || f[4] != "yes" {
			t.Errorf("pdffonts: no embedded font %q:\n%s", name, fonts)
		}
	}
	if strings.Contains(string(pdf), " Tr") {
		t.Error("the PDF still sets a text rendering mode (bold stroked from the regular face)")
	}
	trailer, _ := run(t, pdf, "qpdf", "qpdf", "--show-object=trailer", "PDF")
	root := regexp.MustCompile(`/Root (\d+) 0 R`).FindStringSubmatch(trailer)
	if root == nil {
		t.Fatalf("trailer: %s", trailer)
	}
	catalog, _ := run(t, pdf, "qpdf", "qpdf", "--show-object="+root[1], "PDF")
	if !strings.Contains(catalog, "/Lang (fr-FR)") {
		t.Errorf("catalog lacks /Lang (fr-FR): %s", catalog)
	}
}

// TestHyphen checks that « - » is drawn with a hyphen's glyph (as wide as
// U+2010 HYPHEN), not a minus sign's, in both faces, and that the text
// layer says « - ».
func TestHyphen(t *testing.T) {
	t.Parallel()
	r := setup(t)
	f := gofpdf.New("P", "mm", "A4", "")
	for _, face := range []struct {
		style string
		font  *gofpdf.UTF8Font
	}{{"", r.regular}, {"B", r.bold}} {
		f.AddUTF8FontParsed(face.font)
		f.SetFont(family, face.style, 10)
		if h, hyphen, minus := f.GetStringWidth("-"), f.GetStringWidth("\u2010"), f.GetStringWidth("\u2212"); h != hyphen || h >= minus {
			t.Errorf("face %q: « - » is %.3f mm wide, want the hyphen's %.3f (the minus is %.3f)", face.style, h, hyphen, minus)
		}
	}
	d := testData()
	d.Nom = "Martin-Lefèvre"
	if text := pdftotext(t, render(t, r, d)); !strings.Contains(text, "Martin-Lefèvre") || !strings.Contains(text, "L. 5221-2") {
		t.Errorf("pdftotext lost the hyphens:\n%s", text)
	}
}

// maxData fills every field to the most the API accepts (names 100
// characters, texts 200, addresses 500), in Latin scripts with diacritics.
func maxData() Data {
	d := testData()
	fill := func(words string, n int) string { // n runes of words, ending on a letter
		s := []rune(strings.Repeat(words+" ", n/len([]rune(words))+1))[:n]
		s[n-1] = 'z'
		return string(s)
	}
	d.ServiceNom = fill("Préfecture de la région Auvergne-Rhône-Alpes", 200)
	d.ServiceAdresse = fill("Direction des migrations", 150) + "\n" + fill("18 rue de Bonnel", 200) + "\n" + fill("69003 Lyon Cedex", 148)
	d.ProcedureLibelle = fill("Autorisation provisoire de travail", 200)
	d.Nom = fill("Nguyễn Thị Phương-Thảo", 100)                      // Vietnamese
	d.Prenom = fill("Grzegorz Łukasz Żółć Brzęczyszczykiewicz", 100) // Polish
	d.LieuNaissance = fill("Şanlıurfa İstanbul Çağlayan Ğüöı", 200)  // Turkish
	d.Nationalite = fill("tchèque Příšerně žluťoučký kůň úpěl ďábelské ódy", 100)
	d.TitreSejourNumero = fill("6912345678", 50)
	d.Etablissement = fill("Univerzita Karlova Ústav řečtiny Dvořák", 200) // Czech
	d.EmployeurRaisonSociale = fill("Boulangerie Pâtisserie Les Délices de Fourvière", 200)
	d.EmployeurAdresse = fill("12 montée Saint-Barthélemy", 250) + "\n" + fill("69005 Lyon", 249)
	d.Emploi = fill("Vendeuse en boulangerie-pâtisserie", 200)
	d.SignataireNom = fill("Marie-Hélène de La Tour d'Auvergne", 100)
	d.SignataireQualite = fill("Pour le préfet et par délégation, la cheffe du bureau des étrangers", 200)
	d.Motivation = fill("Le contrat de travail respecte la durée maximale autorisée.", 600)
	// The widest letters of the code's alphabet.
	d.VerificationCode = strings.Repeat("wm", 16)
	d.VerificationURL = "https://aptflow.example.fr/attestations/" + d.VerificationCode
	return d
}

// TestMaxLength renders every field at its maximum length: the page is
// one, nothing is cut (no « … »), and pdftotext gives every value whole.
func TestMaxLength(t *testing.T) {
	t.Parallel()
	d := maxData()
	pdf := render(t, setup(t), d)
	if info := pdfinfo(t, pdf); !strings.Contains(info, "Pages:           1\n") {
		t.Fatalf("pdfinfo:\n%s", info)
	}
	text := pdftotext(t, pdf)
	if strings.Contains(text, "…") {
		t.Errorf("something was cut:\n%s", text)
	}
	if strings.Contains(text, "ne peut pas afficher") {
		t.Errorf("a note says some letters cannot be shown:\n%s", text)
	}
	// pdftotext breaks lines where the page does: compare without spaces.
	flat := strings.Join(strings.Fields(text), "")
	for name, v := range map[string]string{
		"ServiceNom": d.ServiceNom, "ServiceAdresse": d.ServiceAdresse, "ProcedureLibelle": d.ProcedureLibelle,
		"Nom": d.Nom, "Prenom": d.Prenom, "LieuNaissance": d.LieuNaissance, "Nationalite": d.Nationalite,
		"TitreSejourNumero": d.TitreSejourNumero, "Etablissement": d.Etablissement,
		"EmployeurRaisonSociale": d.EmployeurRaisonSociale, "EmployeurAdresse": d.EmployeurAdresse,
		"Emploi": d.Emploi, "SignataireNom": d.SignataireNom, "SignataireQualite": d.SignataireQualite,
		"Motivation": d.Motivation,
	} {
		if !strings.Contains(flat, strings.Join(strings.Fields(v), "")) {
			t.Errorf("%s is not whole in the text:\n%s", name, text)
		}
	}
	if !strings.Contains(flat, strings.Join(strings.Fields("son authenticité se vérifie en ligne, à l'adresse ci-dessus."), "")) {
		t.Errorf("the footer is cut:\n%s", text)
	}
	if want := "Code de vérification : " + strings.Repeat("WMWM ", 7) + "WMWM\n"; !strings.Contains(text, want) {
		t.Errorf("the code is not whole on its line, %q:\n%s", want, text)
	}
	if got := decodeQR(t, pdf); got != d.VerificationURL {
		t.Errorf("QR code decodes to %q", got)
	}
}

func TestQRCode(t *testing.T) {
	t.Parallel()
	r := setup(t)
	// A long public URL takes a version of 7 or more (45 modules and up),
	// which also carries version information blocks.
	longURL := testData()
	longURL.VerificationURL = "https://demarches.prefecture-du-rhone.interieur.gouv.fr/services/aptflow/attestations/" + strings.Repeat("K7Q2M9XD4HPA", 8)
	for name, d := range map[string]Data{"OK": testData(), "Long": longData(), "LongURL": longURL} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := decodeQR(t, render(t, r, d)); got != d.VerificationURL {
				t.Fatalf("QR code decodes to %q, want %q", got, d.VerificationURL)
			}
		})
	}
}

// TestUnicode checks names in scripts the fonts cover (Latin with its
// extensions, Greek, Cyrillic) and do not (CJK; Arabic, whose letters they
// have, but which gofpdf cannot write right to left): either way the PDF is
// valid, one page, and its text layer holds the name, even where the page
// shows empty boxes.
func TestUnicode(t *testing.T) {
	t.Parallel()
	r := setup(t)
	for _, tc := range []struct {
		name, prenom, nom, want string
		missing                 bool // the font lacks some of its glyphs
	}{
		{"Latin", "Élodie", "Dupré", "Élodie Dupré", false},
		{"LatinExtended", "Ørjan", "Œdipe-Łukasiewicz", "Ørjan Œdipe-Łukasiewicz", false},
		{"CJK", "", "王小明", "王小明", true},
		{"Arabic", "", "محمد", "محمد", true},
		{"Greek+Cyrillic", "Σωκράτης", "Достоевский", "Σωκράτης Достоевский", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := testData()
			d.Prenom, d.Nom = tc.prenom, tc.nom
			d.LieuNaissance = tc.want // a regular-weight field too
			pdf := render(t, r, d)
			if info := pdfinfo(t, pdf); !strings.Contains(info, "Pages:           1\n") {
				t.Fatalf("pdfinfo:\n%s", info)
			}
			text := pdftotext(t, pdf)
			if !strings.Contains(text, tc.want) && !strings.Contains(text, reverse(tc.want)) {
				t.Errorf("pdftotext lacks %q:\n%s", tc.want, text)
			}
			// A name shown as empty boxes comes with a note saying why.
			if got := strings.Contains(text, "ne peut pas afficher"); got != tc.missing {
				t.Errorf("note on missing glyphs: %v, want %v:\n%s", got, tc.missing, text)
			}
		})
	}
}

// reverse reverses s: pdftotext puts right-to-left text back in its own
// order, and the PDF draws it left to right.
func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// TestLong checks the page budget at its limit: everything still fits on
// one page, the motivation is cut with « … », and the QR code still reads.
func TestLong(t *testing.T) {
	t.Parallel()
	r := setup(t)
	cjk := longData()
	cjk.Nom = strings.Repeat("王", 200) // adds the note on missing glyphs
	for name, d := range map[string]Data{"Latin": longData(), "CJK": cjk} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pdf := render(t, r, d)
			if info := pdfinfo(t, pdf); !strings.Contains(info, "Pages:           1\n") {
				t.Fatalf("pdfinfo:\n%s", info)
			}
			text := pdftotext(t, pdf)
			if !strings.Contains(text, "Motivation de la décision") {
				t.Errorf("the motivation is gone:\n%s", text)
			}
			if strings.Contains(text, "FINDELAMOTIVATION") {
				t.Errorf("a 5000-character motivation was not cut:\n%s", text)
			}
			if !strings.Contains(text, "…") {
				t.Errorf("no « … » marks what was cut:\n%s", text)
			}
		})
	}
}

// TestEdgeCases renders data that is odd but must not fail: empty optional
// fields, zero dates, runes outside the BMP, control characters, bad UTF-8.
func TestEdgeCases(t *testing.T) {
	t.Parallel()
	r := setup(t)
	for name, edit := range map[string]func(*Data){
		"Minimal": func(d *Data) {
			*d = Data{DecidedAt: d.DecidedAt, VerificationURL: d.VerificationURL}
		},
		"NoMotivationNoSignataire": func(d *Data) { d.Motivation, d.SignataireNom, d.SignataireQualite = "", "", "" },
		"Emoji":                    func(d *Data) { d.Nom, d.Motivation = "Dupré 😀", "🎉 \U00010000 ok" },
		"Controls":                 func(d *Data) { d.Nom, d.Motivation = "Du\x00pr\té\u202e", "a\r\nb\x1b[31m\f\u2028c" },
		"BadUTF8":                  func(d *Data) { d.Nom = "Dupr\xc3" },
		"Parentheses":              func(d *Data) { d.Nom = `(Dupré) \ )(` },
		"OnlyNewlines":             func(d *Data) { d.Motivation, d.EmployeurAdresse = "\n\n\n", "\n" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := testData()
			edit(&d)
			pdf := render(t, r, d)
			if info := pdfinfo(t, pdf); !strings.Contains(info, "Pages:           1\n") {
				t.Fatalf("pdfinfo:\n%s", info)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	r := setup(t)
	for name, edit := range map[string]func(*Data){
		"NoDecidedAt":       func(d *Data) { d.DecidedAt = time.Time{} },
		"NoVerificationURL": func(d *Data) { d.VerificationURL = "" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := testData()
			edit(&d)
			if _, err := r.Render(d); err == nil {
				t.Fatal("Render succeeded")
			}
		})
	}
}

func TestBadFont(t *testing.T) {
	t.Parallel()
	for name, font := range map[string][]byte{
		"Garbage":   []byte("not a font"),
		"Truncated": dejavusanscondensed.TTF[:1000],
		"Empty":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := newRenderer(font, dejavusanscondensedbold.TTF); err == nil {
				t.Fatal("newRenderer accepted a bad regular font")
			}
			if _, err := newRenderer(dejavusanscondensed.TTF, font); err == nil {
				t.Fatal("newRenderer accepted a bad font")
			}
		})
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{"", "Élodie", "王小明", "😀", "\x00\xff", strings.Repeat("x ", 300), "(\\)"} {
		f.Add(s, s, 17.5)
	}
	r := setup(f)
	f.Fuzz(func(t *testing.T, name, motivation string, hours float64) {
		d := testData()
		d.Nom, d.Motivation, d.HeuresHebdo = name, motivation, hours
		if pdf := render(t, r, d); !bytes.HasPrefix(pdf, []byte("%PDF-")) {
			t.Fatal("not a PDF")
		}
	})
}

func BenchmarkRender(b *testing.B) {
	r := setup(b)
	d := testData()
	var pdf []byte
	b.ReportAllocs()
	for b.Loop() {
		pdf = render(b, r, d)
	}
	b.ReportMetric(float64(len(pdf)), "bytes/pdf")
}

// tool returns the path of a command the tests need, failing (never
// skipping) with how to install it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to check the PDF: install it with `apt-get install -y %s`", name, pkg)
	}
	return path
}

// run writes pdf to a temporary file and runs name with args, where "PDF"
// stands for that file; it returns stdout, failing on an error or on
// anything printed to stderr (poppler reports a broken PDF there).
func run(t *testing.T, pdf []byte, pkg, name string, args ...string) (stdout string, dir string) {
	t.Helper()
	bin := tool(t, name, pkg)
	dir = t.TempDir()
	file := filepath.Join(dir, "attestation.pdf")
	if err := os.WriteFile(file, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "PDF" {
			args[i] = file
		}
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// pdfinfo prints the PDF's dates in the local zone: the tests read them
	// in UTC, whatever zone they run in (TestDatesInZones).
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || errOut.Len() > 0 {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errOut.String())
	}
	return out.String(), dir
}

// runAllowFail is run for a command whose failure is an answer (pdfsig
// exits non-zero on an invalid signature): stdout and stderr together.
func runAllowFail(t *testing.T, pdf []byte, name string, args ...string) (output string, err error) {
	t.Helper()
	bin := tool(t, name, "poppler-utils")
	file := filepath.Join(t.TempDir(), "attestation.pdf")
	if err := os.WriteFile(file, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "PDF" {
			args[i] = file
		}
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// requireContains fails the test for each of wants that the output of
// tool lacks.
func requireContains(t *testing.T, tool, output string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(output, want) {
			t.Errorf("%s lacks %q:\n%s", tool, want, output)
		}
	}
}

func pdfinfo(t *testing.T, pdf []byte) string {
	t.Helper()
	out, _ := run(t, pdf, "poppler-utils", "pdfinfo", "PDF")
	return out
}

func pdftotext(t *testing.T, pdf []byte) string {
	t.Helper()
	out, _ := run(t, pdf, "poppler-utils", "pdftotext", "-enc", "UTF-8", "PDF", "-")
	return out
}

// decodeQR renders the page at 150 dpi, as a phone's camera would see a
// print, and returns what zbarimg reads from it.
func decodeQR(t *testing.T, pdf []byte) string {
	t.Helper()
	zbarimg := tool(t, "zbarimg", "zbar-tools")
	_, dir := run(t, pdf, "poppler-utils", "pdftoppm", "-png", "-r", "150", "-singlefile", "PDF", "page")
	out, err := exec.Command(zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", filepath.Join(dir, "page.png")).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code: %v", err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// TestQRPenalty checks the mask penalty (ISO/IEC 18004 §7.8.3.1) on grids
// whose score is worked out by hand, then that encodeQR keeps the mask of
// lowest penalty.
func TestQRPenalty(t *testing.T) {
	t.Parallel()
	grid := func(rows ...string) (int, []bool) {
		var dark []bool
		for _, r := range rows {
			for _, c := range r {
				dark = append(dark, c == '#')
			}
		}
		return len(rows), dark
	}
	for _, c := range []struct {
		name string
		rows []string
		want int
	}{
		// Rows and columns: ten runs of 5 (N1 3 each); 16 blocks (N2 3
		// each); all dark, 50 % from half (N4 10 × 10).
		{"dark", []string{"#####", "#####", "#####", "#####", "#####"}, 30 + 48 + 100},
		// A checkerboard: no run, no block, 13 of 25 dark: 2 % from half.
		{"checker", []string{"#.#.#", ".#.#.", "#.#.#", ".#.#.", "#.#.#"}, 0},
		// A finder-like pattern on top of an 11×11 light grid.
		// N1: rows 1–10 are runs of 11 (3+6 each: 90); columns 0, 2, 3,
		// 4, 6 end in runs of 10 (3+5 each: 40), the six others are runs
		// of 11 (54). N2: the 90 light blocks below row 0, and 3 on it
		// (x = 7, 8, 9): 93 × 3. N3: the pattern, light around it: 40.
		// N4: 5 dark of 121, 45 % from half: 9 × 10.
		{"finder", []string{
			"#.###.#....",
			"...........", "...........", "...........", "...........", "...........",
			"...........", "...........", "...........", "...........", "...........",
		}, 184 + 279 + 40 + 90},
	} {
		n, at := grid(c.rows...)
		if got := qrPenalty(n, at); got != c.want {
			t.Errorf("%s: penalty %d, want %d", c.name, got, c.want)
		}
	}

	code, err := encodeQR("https://aptflow.example.fr/attestations/K7Q2-M9XD-4HPA")
	if err != nil {
		t.Fatal(err)
	}
	chosen := qrPenalty(code.Size, qrModules(code))
	for mask := coding.Mask(0); mask < 8; mask++ {
		plan, err := coding.NewPlan(coding.Version((code.Size-17)/4), coding.M, mask)
		if err != nil {
			t.Fatal(err)
		}
		c, err := plan.Encode(coding.String("https://aptflow.example.fr/attestations/K7Q2-M9XD-4HPA"))
		if err != nil {
			t.Fatal(err)
		}
		if p := qrPenalty(c.Size, qrModules(c)); p < chosen {
			t.Errorf("mask %d has penalty %d, below the chosen code's %d", mask, p, chosen)
		}
	}
}
