package templates

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aptflow/aptflow/workflow"
)

var moisFR = [...]string{
	"janvier", "février", "mars", "avril", "mai", "juin",
	"juillet", "août", "septembre", "octobre", "novembre", "décembre",
}

// DateFR formats a calendar date the French way: « 1er mars 2001 »,
// « 26 novembre 2026 »; "" for the zero Date. Every document aptflow makes
// (e-mails, the attestation, the verification page) writes dates with it;
// the day of an instant is DateFR(workflow.DateOf(t, workflow.Paris())).
// A date that is not real is printed as its numbers, visibly wrong.
func DateFR(d workflow.Date) string {
	switch {
	case d.IsZero():
		return ""
	case !d.IsValid():
		return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
	}
	day := fmt.Sprint(d.Day)
	if d.Day == 1 {
		day = "1er"
	}
	return fmt.Sprintf("%s %s %d", day, moisFR[d.Month-1], d.Year)
}

// HoursFR formats a weekly duration with a decimal comma: 17.5 is
// « 17,5 h », 20 is « 20 h », 17.333… is « 17,33 h » (two decimals at
// most); "" for no duration (zero, negative, NaN or infinite). The
// attestation and the verification page print hours with it.
func HoursFR(h float64) string {
	if math.IsNaN(h) || math.IsInf(h, 0) || h <= 0 {
		return ""
	}
	s := strconv.FormatFloat(math.Round(h*100)/100, 'f', -1, 64)
	return strings.Replace(s, ".", ",", 1) + " h"
}

// SiretFR groups a 14-digit SIRET as the INSEE prints it, SIREN then NIC:
// « 732 829 320 00074 » (spaces, dots and dashes typed in it are ignored).
// Anything else is returned as given, so a bad value is visible rather
// than silently reshaped.
func SiretFR(s string) string {
	digits := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\u00a0' || r == '.' || r == '-' {
			return -1
		}
		return r
	}, s)
	if len(digits) != 14 || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return s
	}
	return digits[0:3] + " " + digits[3:6] + " " + digits[6:9] + " " + digits[9:14]
}

// excerptRunes bounds an activity excerpt: a notification points to the
// dossier, it does not replace reading it.
const excerptRunes = 200

// funcMap returns the functions the templates may call. Dates are shown in
// loc (Europe/Paris): applicants and instructors read French local time.
func funcMap(loc *time.Location) map[string]any {
	return map[string]any{
		// date: « 26 novembre 2026 », « 1er décembre 2026 »; "" for no date.
		"date": func(t time.Time) string { return DateFR(workflow.DateOf(t, loc)) },
		// datetime: « 26/11/2026 à 14:05 »; "" for no date.
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			t = t.In(loc)
			return fmt.Sprintf("%02d/%02d/%d à %02d:%02d", t.Day(), t.Month(), t.Year(), t.Hour(), t.Minute())
		},
		"activite": activityLabel,
		"etat":     stateLabel,
		// nombre: « 1 dossier », « 3 dossiers »; French puts 0 and 1 in the singular.
		"nombre": func(n int, singulier, pluriel string) string {
			if n >= -1 && n <= 1 {
				return fmt.Sprintf("%d %s", n, singulier)
			}
			return fmt.Sprintf("%d %s", n, pluriel)
		},
		"fullname": func(prenom, nom string) string {
			return strings.TrimSpace(strings.TrimSpace(prenom) + " " + strings.TrimSpace(nom))
		},
		"lines":   lines,
		"excerpt": excerpt,
		"auteur":  activityAuthor,
		// lien: a link to a dossier with its label, for the "lien" (text)
		// and "bouton" (HTML) templates; they show nothing without a URL.
		"lien": func(label, url string) Link { return Link{Label: label, URL: url} },
	}
}

// Link is a labelled link, as the templates "lien" and "bouton" show it.
type Link struct {
	Label, URL string
}

// activityAuthor is who an activity is shown as coming from: the
// instructeur or the expert who wrote it; no one for the applicant's own,
// which the label already names (« nouveau message de l'usager »).
func activityAuthor(a Activity) string {
	switch a.Kind {
	case workflow.ActivityMessageUsager, workflow.ActivityModification:
		return ""
	}
	return a.Author
}

// activityLabels is how each kind of activity reads in a list. Load
// refuses to start unless they are exactly workflow.ActivityKinds.
var activityLabels = map[string]string{
	workflow.ActivityMessageUsager:      "nouveau message de l'usager",
	workflow.ActivityMessageInstructeur: "nouveau message d'un instructeur",
	workflow.ActivityAvis:               "nouvel avis d'expert",
	workflow.ActivityModification:       "dossier modifié par l'usager",
}

// activityLabel is how an activity reads in a list: « nouveau message de l'usager ».
func activityLabel(kind string) string { return activityLabels[kind] }

// stateLabels is how each state reads in a sentence. Load refuses to
// start unless they are exactly workflow.States.
var stateLabels = map[workflow.State]string{
	workflow.EnConstruction: "en construction",
	workflow.EnInstruction:  "en instruction",
	workflow.Accepte:        "accepté",
	workflow.Refuse:         "refusé",
	workflow.SansSuite:      "classé sans suite",
}

// stateLabel is how a dossier state (its DS name) reads in a sentence.
func stateLabel(state string) string { return stateLabels[workflow.State(state)] }

// lines splits a multi-line text (a message, a motivation) so the HTML can
// put <br> between escaped lines.
func lines(s string) []string {
	return strings.Split(normalizeNewlines(s), "\n")
}

// excerpt makes an activity excerpt fit on one line of a list.
func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= excerptRunes {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:excerptRunes-1])) + "…"
}

// JoinFR joins names the French way: « A », « A et B », « A, B et C ».
func JoinFR(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " et " + names[len(names)-1]
}
