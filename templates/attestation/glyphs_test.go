package attestation

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/digitorus/pdf"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// latinNames are names in Latin scripts with diacritics that a holder may
// bear: Vietnamese (Latin Extended Additional, stacked marks), Polish,
// Turkish and Czech.
var latinNames = map[string][2]string{ // prénom, nom
	"Vietnamese": {"Phương Thảo", "Nguyễn Thị Đặng Hồ Trương Võ Lê ắằẳẵặ ấầẩẫậ ếềểễệ ốồổỗộ ớờởỡợ ứừửữự ỳỷỹỵ"},
	"Polish":     {"Grzegorz Łukasz", "Żółć Brzęczyszczykiewicz Ćma Śnieżna Źdźbło"},
	"Turkish":    {"Çağlayan İlkiz", "Şanlıurfalı Ğüöı Öztürk"},
	"Czech":      {"Příšerně Ďábel", "Žluťoučký Kůň Úpěl Ťuhýk Ňadra"},
}

// TestLatinNamesHaveGlyphs renders names in Latin scripts with diacritics
// and checks what a reader of the page sees: pdftotext gives each name
// back, no note says a letter cannot be shown, and every rune of the name
// is drawn with a real glyph of the embedded font, in both faces (the name
// is bold in the title and its rows, regular in the place of birth and the
// school): the font's character map sends it to a glyph other than
// .notdef (0, the empty box), and that glyph has an outline.
func TestLatinNamesHaveGlyphs(t *testing.T) {
	t.Parallel()
	r := setup(t)
	for script, name := range latinNames {
		t.Run(script, func(t *testing.T) {
			t.Parallel()
			d := testData()
			d.Prenom, d.Nom = name[0], name[1]
			full := name[0] + " " + name[1]
			d.LieuNaissance, d.Etablissement = full, full // the regular face
			pdf := render(t, r, d)
			text := pdftotext(t, pdf)
			flat := strings.Join(strings.Fields(text), "")
			if want := strings.Join(strings.Fields(full), ""); !strings.Contains(flat, want) {
				t.Errorf("pdftotext lacks %q:\n%s", full, text)
			}
			if strings.Contains(text, "ne peut pas afficher") {
				t.Errorf("a note says some letters cannot be shown:\n%s", text)
			}
			fonts := embeddedFonts(t, pdf)
			if len(fonts) != 2 {
				t.Fatalf("%d embedded fonts, want the regular and the bold face", len(fonts))
			}
			for face, font := range fonts {
				for _, rn := range full {
					if rn == ' ' {
						continue
					}
					if err := font.draws(rn); err != nil {
						t.Errorf("%s: %v", face, err)
					}
				}
			}
		})
	}
}

// TestEmbeddedGlyphsCheck shows that the check above sees an empty box: a
// CJK name (which the fonts lack) is drawn with .notdef.
func TestEmbeddedGlyphsCheck(t *testing.T) {
	t.Parallel()
	d := testData()
	d.Nom = "王小明"
	font := embeddedFonts(t, render(t, setup(t), d))["utf8"+family+"B"]
	if font == nil {
		t.Fatal("no bold face embedded")
	}
	if err := font.draws('王'); err == nil {
		t.Error("王 is said to have a glyph in the bold face")
	}
	if err := font.draws('D'); err != nil {
		t.Error(err)
	}
}

// embeddedFont is a font as the PDF embeds it: the subset gofpdf wrote
// (FontFile2) and the map from character codes, which are Unicode code
// points (Identity-H), to its glyphs (CIDToGIDMap).
type embeddedFont struct {
	name     string
	subset   *sfnt.Font
	cidToGID []byte // two bytes per code, big-endian
}

// draws returns an error unless r is drawn with a glyph that has an
// outline.
func (f *embeddedFont) draws(r rune) error {
	if int(r)*2+1 >= len(f.cidToGID) {
		return fmt.Errorf("%q (%U) is beyond the CIDToGIDMap", r, r)
	}
	gid := sfnt.GlyphIndex(int(f.cidToGID[2*r])<<8 | int(f.cidToGID[2*r+1]))
	if gid == 0 {
		return fmt.Errorf("%q (%U) is drawn with .notdef", r, r)
	}
	var buf sfnt.Buffer
	segs, err := f.subset.LoadGlyph(&buf, gid, fixed.I(1000), nil)
	if err != nil {
		return fmt.Errorf("%q (%U), glyph %d: %v", r, r, gid, err)
	}
	if len(segs) == 0 {
		return fmt.Errorf("%q (%U), glyph %d, has no outline", r, r, gid)
	}
	return nil
}

// embeddedFonts reads the fonts of the page's resources, by base name.
func embeddedFonts(t *testing.T, data []byte) map[string]*embeddedFont {
	t.Helper()
	rd, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("read PDF: %v", err)
	}
	page := rd.Trailer().Key("Root").Key("Pages").Key("Kids").Index(0)
	res := page.Key("Resources").Key("Font")
	fonts := map[string]*embeddedFont{}
	for _, key := range res.Keys() {
		font := res.Key(key)
		if font.Key("Subtype").Name() != "Type0" {
			continue
		}
		cid := font.Key("DescendantFonts").Index(0)
		file := stream(t, cid.Key("FontDescriptor").Key("FontFile2"))
		subset, err := sfnt.Parse(file)
		if err != nil {
			t.Fatalf("font %s: parse the embedded subset: %v", font.Key("BaseFont").Name(), err)
		}
		name := font.Key("BaseFont").Name()
		fonts[name] = &embeddedFont{name: name, subset: subset, cidToGID: stream(t, cid.Key("CIDToGIDMap"))}
	}
	return fonts
}

// stream returns the decoded bytes of a PDF stream.
func stream(t *testing.T, v pdf.Value) []byte {
	t.Helper()
	rc := v.Reader()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || len(b) == 0 {
		t.Fatalf("stream %v: %d bytes, %v", v, len(b), err)
	}
	return b
}
