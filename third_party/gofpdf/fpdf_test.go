/*
 * Copyright (c) 2013-2015 Kurt Jung (Gmail: kurt.w.jung)
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

// aptflow: the tests and examples of upstream's fpdf_test.go and
// ttfparser_test.go (v1.16.2) that exercise what aptflow uses: UTF-8
// TrueType fonts, images, links, metadata, text rendering modes and
// deterministic output. Upstream wrote each document into a pdf/ directory
// next to the code and printed its name; here each one is written to memory
// (or t.TempDir()) and read back with poppler. Upstream's DejaVu fonts
// (2.5 MB) are replaced by the Go fonts, which the attestation embeds; the
// images and texts are upstream's, in testdata/.

package gofpdf_test

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

func TestFpdfImplementPdf(t *testing.T) {
	// this will not compile if Fpdf and Tpl
	// do not implement Pdf
	var _ gofpdf.Pdf = (*gofpdf.Fpdf)(nil)
	var _ gofpdf.Pdf = (*gofpdf.Tpl)(nil)
}

// TestIssue0116 addresses issue 116 in which library silently fails after
// calling CellFormat when no font has been set.
func TestIssue0116(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	pdf.SetFont("Arial", "B", 16)
	pdf.Cell(40, 10, "OK")
	if pdf.Error() != nil {
		t.Fatalf("not expecting error when rendering text")
	}

	pdf = newDoc()
	pdf.Cell(40, 10, "Not OK") // Font not set
	if pdf.Error() == nil {
		t.Fatalf("expecting error when rendering text without having set font")
	}
}

// TestIssue0193 addresses issue 193 in which the error io.EOF is incorrectly
// assigned to the FPDF instance error.
func TestIssue0193(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	_ = pdf.RegisterImageOptionsReader("sweden", gofpdf.ImageOptions{ImageType: "png", ReadDpi: true},
		bytes.NewReader(readTestdata(t, "image/sweden.png")))
	if err := pdf.Error(); err != nil {
		t.Fatalf("issue 193 error: %s", err)
	}
}

// TestAddUTF8Font is upstream's ExampleFpdf_AddUTF8Font: four styles of a
// TrueType font loaded from files, text in several languages centred and
// justified. Every line must come back out of the PDF as it went in, and the
// four faces must be embedded as subsets.
func TestAddUTF8Font(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for style, ttf := range goFonts {
		if err := ioutil.WriteFile(filepath.Join(dir, "go"+style+".ttf"), ttf, 0600); err != nil {
			t.Fatal(err)
		}
	}
	pdf := gofpdf.New("P", "mm", "A4", dir)
	pdf.AddPage()
	for style := range goFonts {
		pdf.AddUTF8Font("go", style, "go"+style+".ttf")
	}
	txt1 := string(readTestdata(t, "text/utf-8test.txt"))
	txt2 := string(readTestdata(t, "text/utf-8test2.txt"))

	pdf.SetFont("go", "B", 17)
	pdf.MultiCell(100, 8, "Text in different languages :", "", "C", false)
	pdf.SetFont("go", "", 14)
	pdf.MultiCell(100, 5, txt1, "", "C", false)
	pdf.Ln(15)
	pdf.SetFont("go", "BI", 17)
	pdf.MultiCell(100, 8, "Greek text with alignStr = \"J\":", "", "C", false)
	pdf.SetFont("go", "I", 14)
	pdf.MultiCell(100, 5, txt2, "", "J", false)
	doc := output(t, pdf)

	// Lines are wrapped and justified, so compare the words. Arabic and
	// Hebrew words apart: gofpdf writes them in logical order, which
	// pdftotext reverses as if it were visual; their letters must all be
	// there.
	gotLTR, gotRTL := splitRTL(pdftotext(t, doc))
	wantLTR, wantRTL := splitRTL("Text in different languages : " + txt1 + " Greek text with alignStr = \"J\": " + txt2)
	if gotLTR != wantLTR {
		t.Errorf("pdftotext gives\n%s\nwant\n%s", gotLTR, wantLTR)
	}
	if gotRTL != wantRTL {
		t.Errorf("pdftotext gives the right-to-left letters\n%s\nwant\n%s", gotRTL, wantRTL)
	}

	fonts := poppler(t, doc, "pdffonts", "PDF")
	for style := range goFonts {
		re := regexp.MustCompile(`(?m)^utf8go` + style + ` +CID TrueType +Identity-H +yes +no +yes `)
		if !re.MatchString(fonts) {
			t.Errorf("style %q is not embedded with a ToUnicode map:\n%s", style, fonts)
		}
	}
	// Subsets: the four faces take 600 kB in full.
	if len(doc) > len(goregular.TTF)/2 {
		t.Errorf("the document takes %d bytes: are the fonts subset?", len(doc))
	}
}

// splitRTL returns the words of s written left to right, one space apart,
// and the sorted letters of those written right to left, without the
// embedding marks pdftotext adds around them.
func splitRTL(s string) (ltr, rtl string) {
	var words []string
	var letters []rune
	for _, w := range strings.Fields(s) {
		isRTL := false
		for _, r := range w {
			if unicode.In(r, unicode.Arabic, unicode.Hebrew) {
				isRTL = true
				letters = append(letters, r)
			}
		}
		if !isRTL {
			words = append(words, w)
		}
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	return strings.Join(words, " "), string(letters)
}

// TestUTF8CutFont is upstream's ExampleUTF8CutFont: a subset of a font
// holds the glyphs asked for, with their widths, and is a font gofpdf can
// use in turn. Upstream wrote the subset to the working directory; here it
// stays in memory.
func TestUTF8CutFont(t *testing.T) {
	t.Parallel()
	sub := gofpdf.UTF8CutFont(goregular.TTF, "abcdeé ")
	if len(sub) == 0 || len(sub) > len(goregular.TTF)/10 {
		t.Fatalf("subset of 7 characters: %d bytes, of a font of %d", len(sub), len(goregular.TTF))
	}
	pdf := newDoc()
	pdf.AddUTF8FontFromBytes("full", "", goregular.TTF)
	pdf.AddUTF8FontFromBytes("sub", "", sub)
	pdf.SetFont("full", "", 17)
	full := pdf.GetStringWidth("cabbed é")
	pdf.SetFont("sub", "", 17)
	if w := pdf.GetStringWidth("cabbed é"); w != full {
		t.Errorf("width in the subset %v, in the full font %v", w, full)
	}
	pdf.Cell(100, 10, "cabbed é")
	if text := pdftotext(t, output(t, pdf)); !strings.Contains(text, "cabbed é") {
		t.Errorf("pdftotext gives %q", text)
	}
}

// TestIssue0316 addresses issue 316 in which AddUTF8FromBytes modifies its argument
// utf8bytes resulting in a panic if you generate two PDFs with the "same" font bytes.
func TestIssue0316(t *testing.T) {
	t.Parallel()
	fontBytes := append([]byte(nil), goregular.TTF...)
	for i := 0; i < 2; i++ {
		pdf := newDoc()
		pdf.AddUTF8FontFromBytes("go", "", fontBytes)
		pdf.SetFont("go", "", 16)
		pdf.Cell(40, 10, "Hello World! Γειά σου Κόσμε!")
		output(t, pdf)
		if !bytes.Equal(fontBytes, goregular.TTF) {
			t.Fatal("Font data changed during pdf generation")
		}
	}
}

// TestMultiCellUnsupportedChar: a character beyond the Basic Multilingual
// Plane makes an error, not a panic. Upstream only checked the panic.
func TestMultiCellUnsupportedChar(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	pdf.AddUTF8FontFromBytes("go", "", goregular.TTF)
	pdf.SetFont("go", "", 16)

	defer func() {
		if r := recover(); r != nil {
			t.Errorf("unexpected panic: %v", r)
		}
	}()

	pdf.MultiCell(0, 5, "😀", "", "", false)
	if err := pdf.Output(ioutil.Discard); err == nil || !strings.Contains(err.Error(), "outside the supported range") {
		t.Errorf("Output: %v, want an error on the character outside the supported range", err)
	}
}

// TestGetStringWidth is upstream's ExampleFpdf_GetStringWidth with a UTF-8
// font: each width must be the sum of the glyphs' advances as
// golang.org/x/image reads them from the same font, in the document's unit.
func TestGetStringWidth(t *testing.T) {
	t.Parallel()
	f, err := sfnt.Parse(goregular.TTF)
	if err != nil {
		t.Fatal(err)
	}
	var buf sfnt.Buffer
	upem := fixed.Int26_6(f.UnitsPerEm()) << 6
	const size = 12.0 // pt
	pdf := newDoc()   // in mm
	pdf.AddUTF8FontFromBytes("go", "", goregular.TTF)
	pdf.SetFont("go", "", size)
	for _, s := range []string{"Hello", "世界", "ça va?", "Ελληνικά", "Шевченко", "Łukasiewicz-Øvergård"} {
		units := 0.0 // thousandths of the font size
		for _, r := range s {
			g, err := f.GlyphIndex(&buf, r)
			if err != nil {
				t.Fatal(err)
			}
			adv, err := f.GlyphAdvance(&buf, g, upem, font.HintingNone)
			if err != nil {
				t.Fatal(err)
			}
			units += float64(int(float64(adv)/64*1000/float64(f.UnitsPerEm()) + 0.5))
		}
		want := units / 1000 * size * 25.4 / 72
		if got := pdf.GetStringWidth(s); fmt.Sprintf("%.4f", got) != fmt.Sprintf("%.4f", want) {
			t.Errorf("GetStringWidth(%q) = %.4f mm, want %.4f", s, got, want)
		}
	}
	// Beyond the 65,536 widths gofpdf keeps: the missing width, no panic
	// (upstream read one past the end for U+10000).
	if w := pdf.GetStringWidth("\U00010000"); w <= 0 {
		t.Errorf("GetStringWidth(U+10000) = %v", w)
	}
	if err := pdf.Error(); err != nil {
		t.Fatal(err)
	}
}

// TestSetTextRenderingMode is upstream's ExampleFpdf_SetTextRenderingMode
// with a UTF-8 font: the attestation draws its bold by filling and stroking
// (mode 2). Invisible text (mode 3) is still in the text layer.
func TestSetTextRenderingMode(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	pdf.SetCompression(false)
	pdf.AddUTF8FontFromBytes("go", "", goregular.TTF)
	fontSz := float64(16)
	lineSz := pdf.PointToUnitConvert(fontSz)
	pdf.SetFont("go", "", fontSz)
	pdf.Write(lineSz, "This document demonstrates various modes of text rendering. Search for \"Mode 3\" "+
		"to locate text that has been rendered invisibly.\n\n")
	fontSz = float64(60)
	lineSz = pdf.PointToUnitConvert(fontSz)
	pdf.SetFontSize(fontSz)
	pdf.SetTextColor(170, 170, 190)
	pdf.SetDrawColor(50, 60, 90)

	write := func(mode int) {
		pdf.SetTextRenderingMode(mode)
		pdf.CellFormat(210, lineSz, fmt.Sprintf("Mode %d é", mode), "", 1, "", false, 0, "")
	}
	for mode := 0; mode < 4; mode++ {
		write(mode)
	}
	write(0)
	doc := output(t, pdf)

	text := pdftotext(t, doc)
	for mode := 0; mode < 4; mode++ {
		if want := fmt.Sprintf("Mode %d é", mode); !strings.Contains(text, want) {
			t.Errorf("pdftotext lacks %q:\n%s", want, text)
		}
	}
	for _, op := range []string{"\n1 Tr\n", "\n2 Tr\n", "\n3 Tr\n", "\n0 Tr\n"} {
		if !bytes.Contains(doc, []byte(op)) {
			t.Errorf("the content stream lacks %q", op)
		}
	}
}

// TestMetadata is upstream's ExampleFpdf_SetKeywords with a UTF-8 font
// instead of a Type 1 one made for the test: the metadata strings, in
// UTF-8, come back as they were set.
func TestMetadata(t *testing.T) {
	t.Parallel()
	pdf := gofpdf.New("", "", "", "")
	pdf.SetTitle("世界 — Autorisation nº 42", true)
	pdf.SetAuthor("Préfecture du Rhône", true)
	pdf.SetSubject("Décision du 12 mars 2025", true)
	pdf.SetCreator("aptflow", true)
	pdf.SetKeywords("世界 APT étudiant", true)
	pdf.AddUTF8FontFromBytes("go", "", goregular.TTF)
	pdf.AddPage()
	pdf.SetFont("go", "", 16)
	pdf.Write(5, "Élodie Dupré")
	info := poppler(t, output(t, pdf), "pdfinfo", "PDF")
	for _, want := range []string{
		"Title:           世界 — Autorisation nº 42\n",
		"Subject:         Décision du 12 mars 2025\n",
		"Keywords:        世界 APT étudiant\n",
		"Author:          Préfecture du Rhône\n",
		"Creator:         aptflow\n",
		"Pages:           1\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("pdfinfo lacks %q:\n%s", want, info)
		}
	}
}

// TestSetModificationDate is upstream's ExampleFpdf_SetModificationDate
// (whose comment showed pdfinfo's output), with the creation date set too:
// the dates are the ones set, never the clock's.
func TestSetModificationDate(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	pdf.SetCreationDate(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	pdf.SetModificationDate(time.Date(2000, 1, 2, 10, 22, 30, 0, time.UTC))
	info := poppler(t, output(t, pdf), "pdfinfo", "-isodates", "PDF")
	for _, want := range []string{
		"CreationDate:    2000-01-01T00:00:00Z\n",
		"ModDate:         2000-01-02T10:22:30Z\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("pdfinfo lacks %q:\n%s", want, info)
		}
	}
}

// TestImage is upstream's ExampleFpdf_Image: a paletted PNG, a GIF, a grey
// PNG with alpha, an RGBA PNG and a JPEG. Each must be in the PDF with its
// size and colours, the alpha channels as soft masks.
func TestImage(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	pdf.SetFont("Arial", "", 11)
	for i, name := range []string{"logo.png", "logo.gif", "logo-gray.png", "logo-rgb.png", "logo.jpg"} {
		y := 10 + 30*float64(i)
		pdf.Image(filepath.Join("testdata", "image", name), 10, y, 30, 0, false, "", 0, "")
		pdf.Text(50, y+10, name)
	}
	doc := output(t, pdf)
	want := []string{
		"image 104 71 index 1 8 image", // logo.png
		"image 104 71 index 1 8 image", // logo.gif, converted to PNG
		"image 104 71 gray 1 8 image",  // logo-gray.png
		"smask 104 71 gray 1 8 image",
		"image 104 71 rgb 3 8 image", // logo-rgb.png
		"smask 104 71 gray 1 8 image",
		"image 104 71 rgb 3 8 jpeg", // logo.jpg
	}
	if got := pdfimages(t, doc); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("pdfimages -list gives\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if text := pdftotext(t, doc); !strings.Contains(text, "logo-rgb.png") {
		t.Errorf("pdftotext gives %q", text)
	}
}

// TestRegisterImageOptionsReader is upstream's example of the same name (and
// of ExampleFpdf_ImageOptions): an image read once from an io.Reader and
// drawn many times is stored once.
func TestRegisterImageOptionsReader(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	opt := gofpdf.ImageOptions{ImageType: "png", AllowNegativePosition: true}
	info := pdf.RegisterImageOptionsReader("logo", opt, bytes.NewReader(readTestdata(t, "image/logo.png")))
	if info == nil {
		t.Fatalf("RegisterImageOptionsReader: %v", pdf.Error())
	}
	if w, h := info.Extent(); fmt.Sprintf("%.2f×%.2f", w, h) != "36.69×25.05" {
		t.Errorf("extent %.2f×%.2f mm, want 104×71 pixels at 72 dpi", w, h)
	}
	for x := -20.0; x <= 40.0; x += 5 {
		pdf.ImageOptions("logo", x, x+30, 0, 0, false, opt, 0, "")
	}
	doc := output(t, pdf)
	if got := pdfimages(t, doc); len(got) != 13 {
		t.Errorf("%d images drawn, want 13", len(got))
	}
	if n := bytes.Count(doc, []byte("/Subtype /Image")); n != 1 {
		t.Errorf("%d image objects, want 1", n)
	}
}

// pdfimages returns the images drawn in pdf as pdfimages -list sees them,
// one "type width height color comp bpc enc" line each.
func pdfimages(t *testing.T, pdf []byte) []string {
	t.Helper()
	var rows []string
	for _, line := range strings.Split(poppler(t, pdf, "pdfimages", "-list", "PDF"), "\n")[2:] {
		if f := strings.Fields(line); len(f) >= 9 {
			rows = append(rows, strings.Join(f[2:9], " "))
		}
	}
	return rows
}

// TestLinks covers upstream's ExampleFpdf_HTMLBasicNew's links (an internal
// link to a place on another page, a link on an image) and those the
// attestation makes: a link on a cell (CellFormat) and on an area
// (LinkString).
func TestLinks(t *testing.T) {
	t.Parallel()
	pdf := newDoc()
	pdf.SetFont("Helvetica", "", 20)
	_, lineHt := pdf.GetFontSize()
	pdf.Write(lineHt, "To find out what's new in this tutorial, click ")
	link := pdf.AddLink()
	pdf.WriteLinkID(lineHt, "here", link)
	pdf.Ln(lineHt)
	pdf.CellFormat(60, 10, "a cell", "", 1, "L", false, 0, "https://aptflow.example.fr/attestations/K7Q2-M9XD-4HPA")
	pdf.LinkString(10, 100, 30, 30, "https://aptflow.example.fr/a?b=1&c=(2)")
	pdf.AddPage()
	pdf.SetLink(link, 20, -1)
	pdf.ImageOptions(filepath.Join("testdata", "image", "logo.png"), 10, 12, 30, 0, false, gofpdf.ImageOptions{}, 0, "http://www.fpdf.org")
	doc := output(t, pdf)
	want := "Page  Type          URL\n" +
		"   1  Annotation    https://aptflow.example.fr/attestations/K7Q2-M9XD-4HPA\n" +
		"   1  Annotation    https://aptflow.example.fr/a?b=1&c=(2)\n" +
		"   2  Annotation    http://www.fpdf.org\n"
	if got := poppler(t, doc, "pdfinfo", "-url", "PDF"); got != want {
		t.Errorf("pdfinfo -url gives\n%s\nwant\n%s", got, want)
	}
	// The internal link goes to page 2 (object 5), 20 mm from its top.
	for _, want := range []string{"/Kids [3 0 R 5 0 R ]", "/Dest [5 0 R /XYZ 0 785.20 null]"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("the PDF lacks %q", want)
		}
	}
}
