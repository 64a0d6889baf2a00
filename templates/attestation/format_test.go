package attestation

import (
	"math"
	"testing"
	"time"

	"github.com/aptflow/aptflow/internal/zonetest"
	"github.com/aptflow/aptflow/workflow"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, got, want string }{
		{"DateFirst", dateFR(workflow.Date{Year: 2003, Month: 3, Day: 1}), "1er mars 2003"},
		{"Date", dateFR(workflow.Date{Year: 2026, Month: 11, Day: 26}), "26 novembre 2026"},
		{"DateLast", dateFR(workflow.Date{Year: 2026, Month: 12, Day: 31}), "31 décembre 2026"},
		{"DateZero", dateFR(workflow.Date{}), "—"},
		{"DateNotReal", dateFR(workflow.Date{Year: 2027, Month: 2, Day: 29}), "2027-02-29"},
		// 23:30 UTC on 31 December is already New Year's Day in Paris.
		{"DayParis", dayFR(time.Date(2025, 12, 31, 23, 30, 0, 0, time.UTC)), "1er janvier 2026"},
		{"DayZero", dayFR(time.Time{}), "—"},
		{"DateTime", dateTimeFR(time.Date(2025, 3, 12, 13, 5, 0, 0, time.UTC)), "12 mars 2025 à 14 h 05"},
		{"DateTimeSummer", dateTimeFR(time.Date(2025, 8, 1, 6, 0, 0, 0, time.UTC)), "1er août 2025 à 8 h 00"},
		{"DateTimeZero", dateTimeFR(time.Time{}), "—"},
		{"HoursHalf", hoursFR(17.5), "17,5 h"},
		{"HoursWhole", hoursFR(20), "20 h"},
		{"HoursRounded", hoursFR(17.333333), "17,33 h"},
		{"HoursZero", hoursFR(0), "—"},
		{"HoursNaN", hoursFR(math.NaN()), "—"},
		{"Siret", siretFR("73282932000074"), "732 829 320 00074"},
		{"SiretSpaced", siretFR("732 829 320 00074"), "732 829 320 00074"},
		{"SiretShort", siretFR("7328293200007"), "7328293200007"},
		{"SiretLetters", siretFR("73282932000A74"), "73282932000A74"},
		{"CleanSpaces", clean("  Élodie \t  Dupré  ", false), "Élodie Dupré"},
		{"CleanNewlinesSingle", clean("12 rue\r\nLyon", false), "12 rue Lyon"},
		{"CleanNewlinesMulti", clean("12 rue\r\n\n\n\nLyon\n", true), "12 rue\n\nLyon"},
		{"CleanIndent", clean("a\n   b", true), "a\nb"},
		{"CleanControls", clean("Du\x00pr\u200bé\u202e\x1b", false), "Dupré"},
		{"CleanAstral", clean("ok 😀", false), "ok \ufffd"},
		{"CleanNBSP", clean("Mme\u00a0X", false), "Mme\u00a0X"},
		{"CleanBadUTF8", clean("a\xffb", false), "a\ufffdb"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestCoverage(t *testing.T) {
	t.Parallel()
	r := setup(t)
	for s, want := range map[string]bool{
		"Élodie Dupré":             true,
		"Ørjan Œdipe-Łukasiewicz":  true,
		"Σωκράτης Достоевский":     true,
		"Nguyễn Thị Phương-Thảo":   true, // Vietnamese: Latin Extended Additional
		"Żółć Brzęczyszczykiewicz": true,
		"Şanlıurfa Çağlayan Ğüöı":  true,
		"Příšerně žluťoučký kůň":   true,
		"王小明":                      false,
		"देवनागरी":                 false,
		"محمد":                     false, // letters the font has, but right to left
		"שרה":                      false,
		"ok 😀":                     false,
	} {
		if got := r.cov.drawable(s); got != want {
			t.Errorf("drawable(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestDatesInZones renders the attestation again on machines set to the
// zones at both ends of the clock: the golden bytes and the printed dates
// stay the same.
func TestDatesInZones(t *testing.T) {
	zonetest.Run(t, []string{"TestFormat", "TestGolden", "TestText"}, zonetest.Extremes...)
}
