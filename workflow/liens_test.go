package workflow

import "testing"

func TestDossierURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tpl  string
		id   int64
		want string
	}{
		{"https://demarche.example/dossiers/{id}", 42, "https://demarche.example/dossiers/42"},
		{"https://x.example/{id}/messagerie?dossier={id}", 7, "https://x.example/7/messagerie?dossier=7"},
		{"", 42, ""},
	} {
		if got := DossierURL(tc.tpl, tc.id); got != tc.want {
			t.Errorf("DossierURL(%q, %d) = %q, want %q", tc.tpl, tc.id, got, tc.want)
		}
	}
}

// TestCheckLien: what a link template may be, one code per problem.
func TestCheckLien(t *testing.T) {
	t.Parallel()
	for tpl, want := range map[string]string{
		"https://demarche.rhone.gouv.fr/dossiers/{id}":       "",
		"http://intranet.example:8080/apt/{id}?onglet=suivi": "",
		"https://xn--dmarche-b1a.example/{id}":               "",
		"https://demarche.example/dossiers/":                 "missing_id",
		"démarche.example/{id}":                              "invalid_url",
		"https://démarche.example/{id}":                      "invalid_url",
		"https://demarche.example/{id}\u200f":                "invalid_url",
		"https://demarche.example/{id}\t":                    "invalid_url",
		"mailto:etrangers@rhone.gouv.fr?subject={id}":        "invalid_url",
		"https:///{id}":                                      "invalid_url",
		"https://user:pw@demarche.example/{id}":              "invalid_url",
		"//demarche.example/{id}":                            "invalid_url",
		"https://demarche.example/%zz/{id}":                  "invalid_url",
	} {
		if code, _ := checkLien(tpl); code != want {
			t.Errorf("checkLien(%q) = %q, want %q", tpl, code, want)
		}
	}
}
