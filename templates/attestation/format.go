package attestation

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/aptflow/aptflow/templates"
	"github.com/aptflow/aptflow/workflow"
)

// none stands for a missing value: an empty cell on an official form reads
// as an oversight, a dash as « not applicable ».
const none = "—"

// dateFR formats a calendar date the French way: « 1er mars 2001 »,
// « 26 novembre 2026 ».
func dateFR(d workflow.Date) string {
	if d.IsZero() {
		return none
	}
	return templates.DateFR(d)
}

// dayFR formats the day of an instant in Paris: « 12 mars 2025 ».
func dayFR(t time.Time) string { return dateFR(workflow.DateOf(t, workflow.Paris())) }

// dateTimeFR formats an instant in Paris: « 12 mars 2025 à 14 h 05 ».
func dateTimeFR(t time.Time) string {
	if t.IsZero() {
		return none
	}
	l := t.In(workflow.Paris())
	return fmt.Sprintf("%s à %d h %02d", dayFR(t), l.Hour(), l.Minute())
}

// hoursFR formats a weekly duration (templates.HoursFR), or the dash.
func hoursFR(h float64) string { return orNone(templates.HoursFR(h)) }

// siretFR groups a SIRET as the INSEE prints it (templates.SiretFR).
func siretFR(s string) string { return templates.SiretFR(s) }

// clean makes a field printable by gofpdf: control and format characters
// (tabs, bidi overrides, zero-width joiners) would print as missing glyphs or
// reorder nothing, so they go; characters outside the Basic Multilingual
// Plane become U+FFFD, because gofpdf's UTF-8 fonts index their width table
// by rune and panic past U+FFFF. Runs of spaces collapse to one. With
// multiline, line breaks are kept (at most one blank line in a row);
// otherwise they become spaces.
func clean(s string, multiline bool) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	newlines := 0 // consecutive line breaks just written
	space := false
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' || r == '\v' || r == '\f':
			if !multiline {
				space = b.Len() > 0
				continue
			}
			if b.Len() > 0 && newlines < 2 {
				b.WriteByte('\n')
				newlines++
			}
			space = false
			continue
		case r == '\t' || r == ' ' || (unicode.IsSpace(r) && r != '\u00a0'):
			space = b.Len() > 0 && newlines == 0
			continue
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
			continue
		case r > 0xFFFF:
			r = unicode.ReplacementChar
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		newlines = 0
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), "\n")
}

// orNone returns s, or the dash when s is empty.
func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}
