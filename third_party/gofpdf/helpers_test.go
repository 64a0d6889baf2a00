package gofpdf_test

// The helpers of the tests in this directory (aptflow's, not upstream's):
// documents are checked by reading them back with poppler's tools, as the
// attestation's tests do, rather than by trusting gofpdf's own view of them.
// Everything is written under t.TempDir().

import (
	"bytes"
	"io/ioutil"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jung-kurt/gofpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gobolditalic"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/goregular"
)

// goFonts are the Go fonts (golang.org/x/image/font/gofont, BSD licence) by
// gofpdf style: Latin, Greek and Cyrillic, no Arabic, Hebrew or CJK. The
// attestation embeds the regular one.
var goFonts = map[string][]byte{
	"":   goregular.TTF,
	"B":  gobold.TTF,
	"I":  goitalic.TTF,
	"BI": gobolditalic.TTF,
}

// newDoc returns an A4 document in millimetres with one page.
func newDoc() *gofpdf.Fpdf {
	pdf := gofpdf.New("P", "mm", "A4", "")
	pdf.AddPage()
	return pdf
}

// output returns the document's bytes, failing the test on any error the
// document recorded.
func output(t testing.TB, pdf *gofpdf.Fpdf) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		t.Fatalf("Output: %v", err)
	}
	return buf.Bytes()
}

// readTestdata returns the content of testdata/name.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := ioutil.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// poppler runs name, a command of poppler-utils, with args, where "PDF"
// stands for pdf written to a temporary file. It returns stdout and fails on
// an error or on anything printed to stderr, where poppler reports a broken
// PDF. A missing command fails the test (never skips it) with how to
// install it.
func poppler(t testing.TB, pdf []byte, name string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to check the PDF: install it with `apt-get install -y poppler-utils`", name)
	}
	file := filepath.Join(t.TempDir(), "doc.pdf")
	if err := ioutil.WriteFile(file, pdf, 0600); err != nil {
		t.Fatal(err)
	}
	argv := make([]string, len(args))
	for i, a := range args {
		if a == "PDF" {
			a = file
		}
		argv[i] = a
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// Dates without a zone are printed in the local one: make it UTC.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	if err := cmd.Run(); err != nil || errOut.Len() > 0 {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errOut.String())
	}
	return out.String()
}

// pdftotext returns the text of pdf as poppler extracts it, in UTF-8.
func pdftotext(t testing.TB, pdf []byte) string {
	t.Helper()
	return poppler(t, pdf, "pdftotext", "-enc", "UTF-8", "PDF", "-")
}
