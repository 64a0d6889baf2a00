package gofpdf_test

// Tests of aptflow's patches (README.md, "Patches", names each test) and of
// the fixes staticcheck led to. The patches that change no output are
// checked against upstream's own code paths: a font parsed once against
// the same font added from bytes, a pooled zlib writer against a new one.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-fonts/dejavu/dejavusanscondensed"
	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

// texts are set in the documents of these tests: each uses other glyphs,
// so a glyph or width leaking from one document into another shows.
var texts = map[string]string{
	"Latin":    "Élodie Dupré, Boulangerie Les Délices de Fourvière — 17,5 h",
	"Greek":    "Παπαδοπούλου Ελένη",
	"Cyrillic": "Шевченко Тарас Григорович",
	"Mixed":    "Łukasiewicz-Øvergård Nguyễn N'Diaye « œ » 0123456789",
	"Missing":  "王小明 Արամ", // no glyph in the Go fonts: boxes, text kept
}

var docDate = time.Date(2025, time.March, 12, 13, 5, 0, 0, time.UTC)

// parse returns the Go Regular font parsed for family "go".
func parse(t testing.TB) *gofpdf.UTF8Font {
	t.Helper()
	font, err := gofpdf.ParseUTF8Font("go", "", goregular.TTF)
	if err != nil {
		t.Fatalf("ParseUTF8Font: %v", err)
	}
	return font
}

// richDoc returns buildRich's document, failing the test on an error.
func richDoc(t testing.TB, addRegular func(*gofpdf.Fpdf), text string, compress bool) []byte {
	t.Helper()
	doc, err := buildRich(addRegular, text, compress)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// buildRich makes a document with what the attestation uses, and more:
// family "go" in regular (added by addRegular) and bold, a core font, text
// on a line, justified and in a link, images, links and metadata, with
// fixed dates and sorted catalogs.
func buildRich(addRegular func(*gofpdf.Fpdf), text string, compress bool) ([]byte, error) {
	pdf := gofpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(compress)
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(docDate)
	pdf.SetModificationDate(docDate)
	pdf.SetTitle("Autorisation provisoire de travail — "+text, true)
	pdf.SetAuthor("Préfecture du Rhône", true)
	addRegular(pdf)
	pdf.AddUTF8FontFromBytes("go", "B", gobold.TTF)
	pdf.AddPage()
	pdf.SetFont("go", "B", 14)
	pdf.CellFormat(0, 8, text, "", 1, "C", false, 0, "")
	pdf.SetFont("go", "", 11)
	pdf.MultiCell(0, 5, strings.Repeat(text+" ", 8), "", "J", false)
	pdf.SetTextRenderingMode(2)
	pdf.CellFormat(0, 6, text, "", 1, "L", false, 0, "https://aptflow.example.fr/attestations/K7Q2-M9XD-4HPA")
	pdf.SetTextRenderingMode(0)
	pdf.SetFont("Helvetica", "", 10)
	pdf.Cell(0, 5, "Helvetica")
	for i, name := range []string{"logo.png", "logo-rgb.png", "logo.jpg"} {
		pdf.Image(filepath.Join("testdata", "image", name), 10+40*float64(i), 120, 30, 0, false, "", 0, "")
	}
	pdf.LinkString(10, 120, 30, 20, "https://aptflow.example.fr/")
	var buf bytes.Buffer
	err := pdf.Output(&buf)
	return buf.Bytes(), err
}

// fromBytes adds Go Regular as upstream does, parsing it for the document.
func fromBytes(pdf *gofpdf.Fpdf) { pdf.AddUTF8FontFromBytes("go", "", goregular.TTF) }

// parsed returns an adder of font, parsed once.
func parsed(font *gofpdf.UTF8Font) func(*gofpdf.Fpdf) {
	return func(pdf *gofpdf.Fpdf) { pdf.AddUTF8FontParsed(font) }
}

// TestDeterministicOutput: with sorted catalogs and fixed dates, a
// document's bytes depend on its content alone, compressed or not (the
// attestation's SHA-256 is announced before a retried job renders it again).
func TestDeterministicOutput(t *testing.T) {
	t.Parallel()
	font := parse(t)
	for _, compress := range []bool{false, true} {
		first := richDoc(t, parsed(font), texts["Mixed"], compress)
		for i := 0; i < 10; i++ {
			if doc := richDoc(t, parsed(font), texts["Mixed"], compress); !bytes.Equal(doc, first) {
				t.Fatalf("compress=%v: document %d differs from the first", compress, i+2)
			}
		}
		if !bytes.Contains(first, []byte("/CreationDate (D:20250312130500)")) {
			t.Errorf("compress=%v: no fixed creation date", compress)
		}
	}
}

// TestUTF8FontParsed (patches 1 and 2): a document with a font parsed once
// is byte for byte the document with the same font added from bytes, for
// each text, compressed or not.
func TestUTF8FontParsed(t *testing.T) {
	t.Parallel()
	font := parse(t)
	for name, text := range texts {
		for _, compress := range []bool{false, true} {
			want := richDoc(t, fromBytes, text, compress)
			if got := richDoc(t, parsed(font), text, compress); !bytes.Equal(got, want) {
				t.Errorf("%s, compress=%v: the parsed font gives another document than AddUTF8FontFromBytes", name, compress)
			}
		}
	}
	// The text layer holds every character, drawn or not.
	if got := pdftotext(t, richDoc(t, parsed(font), texts["Missing"], true)); !strings.Contains(got, texts["Missing"]) {
		t.Errorf("pdftotext lacks %q:\n%s", texts["Missing"], got)
	}
}

// TestUTF8FontParsedAcrossDocuments (patch 2): the tables a UTF8Font parses
// once serve every document unchanged; whatever a document subsets, the
// next one is what a freshly parsed font gives.
func TestUTF8FontParsedAcrossDocuments(t *testing.T) {
	t.Parallel()
	shared := parse(t)
	for _, name := range []string{"Greek", "Latin", "Cyrillic", "Missing", "Mixed", "Greek"} {
		want := richDoc(t, parsed(parse(t)), texts[name], true)
		if got := richDoc(t, parsed(shared), texts[name], true); !bytes.Equal(got, want) {
			t.Errorf("%s: a font that served other documents gives another document than a new one", name)
		}
	}
}

// TestParseUTF8FontCopies (patch 1): ParseUTF8Font keeps its own copy of
// the bytes it is given.
func TestParseUTF8FontCopies(t *testing.T) {
	t.Parallel()
	ttf := append([]byte(nil), goregular.TTF...)
	font, err := gofpdf.ParseUTF8Font("go", "", ttf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ttf {
		ttf[i] = 0
	}
	if got, want := richDoc(t, parsed(font), texts["Latin"], true), richDoc(t, fromBytes, texts["Latin"], true); !bytes.Equal(got, want) {
		t.Error("the parsed font changed with the bytes it was parsed from")
	}
}

// TestUTF8FontParsedConcurrent (patch 4), for -race: documents rendered at
// once share one UTF8Font, which subsetting must only read. Upstream padded
// the font's tables in place; the race detector saw that write.
func TestUTF8FontParsedConcurrent(t *testing.T) {
	t.Parallel()
	font := parse(t)
	var names []string
	want := map[string][]byte{}
	for name, text := range texts {
		names = append(names, name)
		want[name] = richDoc(t, parsed(font), text, true)
	}
	const rounds = 4
	got := make([][]byte, rounds*len(names))
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = buildRich(parsed(font), texts[names[i%len(names)]], true)
		}(i)
	}
	wg.Wait()
	for i, doc := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if name := names[i%len(names)]; !bytes.Equal(doc, want[name]) {
			t.Errorf("concurrent document %d (%s) differs from the sequential one", i, name)
		}
	}
	if bytes.Equal(want["Latin"], want["Greek"]) {
		t.Error("documents of different texts are identical")
	}
}

// tableAt returns the offset of table tag in ttf.
func tableAt(t testing.TB, ttf []byte, tag string) int {
	t.Helper()
	for i := 0; i < int(binary.BigEndian.Uint16(ttf[4:])); i++ {
		rec := ttf[12+16*i:]
		if string(rec[:4]) == tag {
			return int(binary.BigEndian.Uint32(rec[8:]))
		}
	}
	t.Fatalf("no %s table", tag)
	return 0
}

// badFont is a font gofpdf must refuse, and what its error says.
type badFont struct {
	name, want string
	ttf        []byte
}

// badFonts are Go Regular broken in each way the parser checks. Upstream
// printed most of these on stdout and went on with a font it could not
// use.
func badFonts(t testing.TB) []badFont {
	edit := func(tag string, edits map[int][]byte) []byte {
		ttf := append([]byte(nil), goregular.TTF...)
		at := 0
		if tag != "" {
			at = tableAt(t, ttf, tag)
		}
		for off, b := range edits {
			copy(ttf[at+off:], b)
		}
		return ttf
	}
	return []badFont{
		{"NotTrueType", "not a TrueType font", []byte("not a font, not even close")},
		{"OpenTypeCFF", "CFF outlines", edit("", map[int][]byte{0: []byte("OTTO")})},
		{"Collection", "TrueType collection", edit("", map[int][]byte{0: []byte("ttcf")})},
		{"EmbeddingRestricted", "does not allow embedding", edit("OS/2", map[int][]byte{8: {0, 2}})},
		{"NoSubsetting", "does not allow embedding", edit("OS/2", map[int][]byte{8: {1, 0}})},
		// Platform 0 becomes 2 (ISO) and Windows Unicode becomes Symbol.
		{"NoUnicodeCmap", "no Unicode character map", edit("cmap", map[int][]byte{4: {0, 2}, 4 + 16 + 2: {0, 0}})},
		{"MetricDataFormat", "horizontal metric data format 1", edit("hhea", map[int][]byte{32: {0, 1}})},
		{"NoHorizontalMetrics", "number of horizontal metrics is 0", edit("hhea", map[int][]byte{34: {0, 0}})},
		{"LocaFormat", "loca table format 2", edit("head", map[int][]byte{50: {0, 2}})},
		{"GlyphDataFormat", "glyph data format 1", edit("head", map[int][]byte{52: {0, 1}})},
	}
}

// TestBadFonts (patch 5): a font gofpdf cannot use is an error of
// ParseUTF8Font and of the document it is added to, saying why.
func TestBadFonts(t *testing.T) {
	t.Parallel()
	for _, tc := range badFonts(t) {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := gofpdf.ParseUTF8Font("go", "", tc.ttf); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseUTF8Font: %v, want an error with %q", err, tc.want)
			}
			pdf := newDoc()
			pdf.AddUTF8FontFromBytes("go", "", tc.ttf)
			if err := pdf.Error(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AddUTF8FontFromBytes: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestNothingOnStdout (patch 5): the library writes nothing on stdout: not
// on bad fonts, not on documents that differ. Upstream printed there.
// Not parallel: it swaps os.Stdout, and no parallel test runs until it is
// done.
func TestNothingOnStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()

	for _, tc := range badFonts(t) {
		_, _ = gofpdf.ParseUTF8Font("go", "", tc.ttf)
		pdf := newDoc()
		pdf.AddUTF8FontFromBytes("go", "", tc.ttf)
	}
	_ = gofpdf.CompareBytes([]byte("%PDF-1.3 one"), []byte("%PDF-1.3 two"), true)
	richDoc(t, parsed(parse(t)), texts["Mixed"], true)

	os.Stdout = stdout
	w.Close()
	out, err := ioutil.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > 0 {
		t.Errorf("gofpdf wrote on stdout:\n%s", out)
	}
}

// TestCorruptPNG (patch 6): a PNG with an alpha channel whose image data is
// not zlib is an error of the document. Upstream deferred the zlib
// reader's Close before checking its error, and panicked on the nil reader.
func TestCorruptPNG(t *testing.T) {
	t.Parallel()
	png := append([]byte(nil), readTestdata(t, "image/sweden.png")...) // RGBA
	idat := bytes.Index(png, []byte("IDAT"))
	if idat < 0 {
		t.Fatal("no IDAT chunk")
	}
	copy(png[idat+4:], "\xff\xff") // not a zlib header
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic: %v", p)
		}
	}()
	pdf := newDoc()
	pdf.RegisterImageOptionsReader("sweden", gofpdf.ImageOptions{ImageType: "png"}, bytes.NewReader(png))
	if err := pdf.Error(); err == nil || !strings.Contains(err.Error(), "zlib") {
		t.Errorf("got %v, want the zlib error", err)
	}
}

// TestCompareBytes (patch 7): CompareBytes finds a difference in the last
// byte and in the length (upstream found neither), returns its dump in the
// error instead of printing it, and ComparePDFs no longer panics.
func TestCompareBytes(t *testing.T) {
	t.Parallel()
	a := []byte("%PDF-1.3\n01234567") // 17 bytes: a full row and one byte
	for _, tc := range []struct {
		name string
		b    []byte
		want string // "" for equal
	}{
		{"Equal", []byte("%PDF-1.3\n01234567"), ""},
		{"LastByte", []byte("%PDF-1.3\n01234568"), "> 0000010  38 "},
		{"Longer", []byte("%PDF-1.3\n012345678"), "lengths differ: 17 and 18 bytes"},
		{"Shorter", []byte("%PDF-1.3"), "lengths differ: 17 and 8 bytes"},
		{"FirstRow", []byte("%PDF-1.4\n01234567"), "< 0000000  25 50 44 46 2d 31 2e 33  0a 30 31 32 33 34 35 36  |%PDF-1.3.0123456|"},
	} {
		err := gofpdf.CompareBytes(a, tc.b, true)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
		if err := gofpdf.ComparePDFs(bytes.NewReader(a), bytes.NewReader(tc.b), false); (err == nil) != (tc.want == "") {
			t.Errorf("%s: ComparePDFs: %v", tc.name, err)
		}
	}
}

// TestTextSpotColor (a staticcheck finding, SA4000): text in a spot colour
// is drawn in that colour. Upstream compared the text colour with itself,
// never set the colour, and drew the text in the fill colour.
func TestTextSpotColor(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	pdf.SetCompression(false)
	pdf.AddSpotColor("PANTONE 145 CVC", 0, 42, 100, 25)
	pdf.SetFont("Helvetica", "", 12)
	pdf.SetTextSpotColor("PANTONE 145 CVC", 80)
	pdf.CellFormat(50, 10, "spot", "", 0, "", false, 0, "")
	if doc := output(t, pdf); !bytes.Contains(doc, []byte("q /CS1 cs 0.800 scn BT ")) {
		t.Error("the text is not drawn in its spot colour")
	}
}

// catalog returns the document catalog's dictionary, as written (gofpdf
// writes no object streams: the catalog is plain text).
func catalog(t testing.TB, doc []byte) string {
	t.Helper()
	start := bytes.Index(doc, []byte("/Type /Catalog"))
	if start < 0 {
		t.Fatal("no catalog")
	}
	end := bytes.Index(doc[start:], []byte("endobj"))
	if end < 0 {
		t.Fatal("the catalog does not end")
	}
	return string(doc[start : start+end])
}

// TestSetLang (patch 10): the catalog carries /Lang, the language screen
// readers read the text in, once SetLang is called, and nothing otherwise,
// as upstream wrote it.
func TestSetLang(t *testing.T) {
	t.Parallel()
	for lang, want := range map[string]string{"fr-FR": "/Lang (fr-FR)", "": ""} {
		pdf := newDoc()
		pdf.SetLang(lang)
		pdf.SetFont("Helvetica", "", 10)
		pdf.Cell(0, 5, "Bonjour")
		cat := catalog(t, output(t, pdf))
		if got := strings.Contains(cat, "/Lang"); got != (want != "") || !strings.Contains(cat, want) {
			t.Errorf("SetLang(%q): catalog %q, want %q", lang, cat, want)
		}
	}
}

// TestUTF8FontParsedDejaVu (patches 1 and 2) with the attestation's font,
// DejaVu Sans Condensed (github.com/go-fonts/dejavu), whose tables are
// richer than the Go fonts' (hinting, kerning, 6,000 glyphs): for names in
// Vietnamese, Polish, Turkish, Czech, Greek and Cyrillic, the font parsed
// once gives the document the font added from bytes gives, also after it
// served the others.
func TestUTF8FontParsedDejaVu(t *testing.T) {
	t.Parallel()
	doc := func(add func(*gofpdf.Fpdf), text string) []byte {
		pdf := gofpdf.New("P", "mm", "A4", "")
		pdf.SetCatalogSort(true)
		pdf.SetCreationDate(docDate)
		pdf.SetModificationDate(docDate)
		add(pdf)
		pdf.AddPage()
		pdf.SetFont("dejavu", "", 11)
		pdf.MultiCell(0, 5, text, "", "L", false)
		return output(t, pdf)
	}
	fromBytes := func(pdf *gofpdf.Fpdf) { pdf.AddUTF8FontFromBytes("dejavu", "", dejavusanscondensed.TTF) }
	shared, err := gofpdf.ParseUTF8Font("dejavu", "", dejavusanscondensed.TTF)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		"Nguyễn Thị Phương Thảo", "Grzegorz Żółć Brzęczyszczykiewicz", "Şanlıurfa Çağlayan Ğüöı",
		"Příšerně žluťoučký kůň", texts["Greek"], texts["Cyrillic"], texts["Mixed"],
	} {
		want := doc(fromBytes, text)
		if got := doc(parsed(shared), text); !bytes.Equal(got, want) {
			t.Errorf("%q: the parsed font gives another document than AddUTF8FontFromBytes", text)
		}
		if got := pdftotext(t, want); !strings.Contains(got, text) {
			t.Errorf("pdftotext lacks %q:\n%s", text, got)
		}
	}
}

// ExampleParseUTF8Font parses a font once and shares it between documents,
// which may be made at once: patch 1 of aptflow's gofpdf.
func ExampleParseUTF8Font() {
	font, err := gofpdf.ParseUTF8Font("go", "", goregular.TTF)
	if err != nil {
		fmt.Println(err)
		return
	}
	docs := make([]bytes.Buffer, 2)
	var wg sync.WaitGroup
	for i := range docs {
		wg.Add(1)
		go func(doc *bytes.Buffer) {
			defer wg.Done()
			pdf := gofpdf.New("P", "mm", "A4", "")
			pdf.SetCreationDate(docDate)
			pdf.SetModificationDate(docDate)
			pdf.AddUTF8FontParsed(font)
			pdf.AddPage()
			pdf.SetFont("go", "", 12)
			pdf.Cell(0, 10, "Élodie Dupré — Παπαδοπούλου — Шевченко")
			if err := pdf.Output(doc); err != nil {
				fmt.Println(err)
			}
		}(&docs[i])
	}
	wg.Wait()
	fmt.Println(bytes.HasPrefix(docs[0].Bytes(), []byte("%PDF-")), bytes.Equal(docs[0].Bytes(), docs[1].Bytes()))
	// Output: true true
}
