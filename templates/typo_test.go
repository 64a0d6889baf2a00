package templates

import (
	"strings"
	"testing"
)

// nb is a no-break space, in the cases of this package's tests.
const nb = "\u00a0"

func TestTypo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Dossier nº 42 : nouvelle activité", "Dossier nº 42" + nb + ": nouvelle activité"},
		{"Motif ; suite ! Vraiment ?", "Motif" + nb + "; suite" + nb + "! Vraiment" + nb + "?"},
		{"la démarche « APT »", "la démarche «" + nb + "APT" + nb + "»"},
		{"«Télérecours»", "«" + nb + "Télérecours" + nb + "»"},
		{"trop   :  d'espaces", "trop" + nb + ":  d'espaces"},
		{"déjà" + nb + ": fait", "déjà" + nb + ": fait"},
		{"étroite\u202f!", "étroite" + nb + "!"},
		// Never added where there is no space: URLs, times, ratios.
		{"https://apt.rhone.gouv.fr/dossiers/42?onglet=messagerie", "https://apt.rhone.gouv.fr/dossiers/42?onglet=messagerie"},
		{"le 26/11/2026 à 14:05", "le 26/11/2026 à 14:05"},
		// A line's indentation stays as it is.
		{"Motif :\n    : citation", "Motif" + nb + ":\n    : citation"},
		{"  « excerpt »", "  «" + nb + "excerpt" + nb + "»"},
		{"", ""},
		{"sans rien", "sans rien"},
	} {
		got := Typo(tc.in)
		if got != tc.want {
			t.Errorf("Typo(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if again := Typo(got); again != got {
			t.Errorf("Typo is not idempotent on %q: %q", got, again)
		}
	}
}

func TestTypoHTML(t *testing.T) {
	t.Parallel()
	in := `<title>Dossier nº 42 : nouvelle activité</title>` +
		`<p style="margin:0 ; color:#000091">Motif : <strong>« refusé »</strong> ?` +
		`<a href="https://apt.example/d/42?x=1 : y" title="a ! b">lien</a> : fin</p>`
	want := `<title>Dossier nº 42` + nb + `: nouvelle activité</title>` +
		`<p style="margin:0 ; color:#000091">Motif` + nb + `: <strong>«` + nb + `refusé` + nb + `»</strong>` + nb + `?` +
		`<a href="https://apt.example/d/42?x=1 : y" title="a ! b">lien</a>` + nb + `: fin</p>`
	if got := TypoHTML(in); got != want {
		t.Errorf("TypoHTML\n got %q\nwant %q", got, want)
	}
	if got := TypoHTML(want); got != want {
		t.Errorf("TypoHTML is not idempotent: %q", got)
	}
	if got := TypoHTML("a <b unterminated : x"); !strings.HasSuffix(got, "<b unterminated : x") {
		t.Errorf("an unterminated tag changed: %q", got)
	}
}
