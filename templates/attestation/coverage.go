package attestation

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/image/font/sfnt"
)

// coverage is the set of Basic Multilingual Plane runes that the Renderer's
// font can draw. gofpdf draws any other rune as the font's empty box
// (.notdef) while keeping the true text in the PDF's text layer; knowing
// which runes those are lets the attestation say so instead of leaving an
// employer with a row of boxes for a name.
type coverage [0x10000 / 64]uint64

// rightToLeft are the scripts written from right to left whose letters
// the fonts may have: gofpdf neither reorders nor joins them, so a name in
// Arabic or Hebrew would print as its letters, isolated and reversed. They
// count as not drawable: the name comes with the note that the
// verification page shows it in full.
var rightToLeft = []*unicode.RangeTable{unicode.Arabic, unicode.Hebrew, unicode.Syriac, unicode.Thaana, unicode.Nko}

// newCoverage parses a TrueType font, which also checks that it is one, and
// returns the runes it maps to a glyph, right-to-left scripts aside.
func newCoverage(font []byte) (*coverage, error) {
	f, err := sfnt.Parse(font)
	if err != nil {
		return nil, fmt.Errorf("parse font: %w", err)
	}
	c := new(coverage)
	var buf sfnt.Buffer
	for r := rune(0); r < 0x10000; r++ {
		if unicode.In(r, rightToLeft...) {
			continue
		}
		if g, err := f.GlyphIndex(&buf, r); err == nil && g != 0 {
			c[r/64] |= 1 << (r % 64)
		}
	}
	return c, nil
}

// intersect keeps in c the runes that o covers too: a name is drawable if
// both faces draw it.
func (c *coverage) intersect(o *coverage) {
	for i := range c {
		c[i] &= o[i]
	}
}

// has reports whether the font can draw r.
func (c *coverage) has(r rune) bool {
	return r >= 0 && r < 0x10000 && c[r/64]&(1<<(r%64)) != 0
}

// drawable reports whether every rune of s, spaces aside, can be drawn.
func (c *coverage) drawable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r != '\n' && !c.has(r) }) < 0
}
