package workflow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func validDemandeur() Demandeur {
	return Demandeur{
		Nom: "Dupré", Prenom: "Élodie", DateNaissance: "2003-04-12", LieuNaissance: "Montréal",
		Nationalite: "canadienne", TitreSejour: TitreSejour{Numero: "6912345678", ExpireLe: "2027-09-30"},
		Etablissement: "Université Lyon 2",
		Employeur:     Employeur{RaisonSociale: "Boulangerie", Siret: "73282932000074", Adresse: "3 place Bellecour"},
		Emploi:        "vendeuse", HeuresHebdo: 17.5, DateDebut: "2026-12-01", DateFin: "2027-06-30",
	}
}

func TestValidSIRET(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"73282932000074": true,  // Luhn
		"73282932000075": false, // one digit off
		"35600000000048": true,  // La Poste, head office: Luhn
		"35600000049837": true,  // La Poste establishment: digit sum multiple of 5
		"7328293200007":  false, // 13 digits
		"7328293200007a": false,
		"":               false,
	} {
		if got := ValidSIRET(s); got != want {
			t.Errorf("ValidSIRET(%q) = %v", s, got)
		}
	}
}

func TestDemandeurValidate(t *testing.T) {
	t.Parallel()
	today := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change func(*Demandeur)
		fields map[string]string
	}{
		{"OK", func(*Demandeur) {}, nil},
		{"OKUnicode", func(d *Demandeur) { d.Nom, d.Prenom = "王", "Łukasz-Œdipe" }, nil},
		{"ErrRequired", func(d *Demandeur) { d.Nom, d.Emploi = " ", "" }, map[string]string{"demandeur.nom": "required", "demandeur.emploi": "required"}},
		{"ErrTooLong", func(d *Demandeur) { d.Prenom = strings.Repeat("é", 101) }, map[string]string{"demandeur.prenom": "too_long"}},
		{"ErrControl", func(d *Demandeur) { d.Nom = "Du\npré" }, map[string]string{"demandeur.nom": "control_character"}},
		{"ErrNoLetter", func(d *Demandeur) { d.Nom = "1234" }, map[string]string{"demandeur.nom": "invalid_name"}},
		{"ErrDate", func(d *Demandeur) { d.DateNaissance, d.TitreSejour.ExpireLe = "2003-13-01", "31/12/2027" }, map[string]string{"demandeur.date_naissance": "invalid_date", "demandeur.titre_sejour.expire_le": "invalid_date"}},
		{"ErrFutureBirth", func(d *Demandeur) { d.DateNaissance = "2030-01-01" }, map[string]string{"demandeur.date_naissance": "out_of_range"}},
		{"ErrOrder", func(d *Demandeur) { d.DateDebut, d.DateFin = "2027-01-02", "2027-01-01" }, map[string]string{"demandeur.date_fin": "before_date_debut"}},
		{"ErrBeyondPermit", func(d *Demandeur) { d.DateFin = "2027-10-01" }, map[string]string{"demandeur.date_fin": "after_titre_sejour"}},
		{"ErrHours", func(d *Demandeur) { d.HeuresHebdo = 20.5 }, map[string]string{"demandeur.heures_hebdo": "out_of_range"}},
		{"ErrHoursZero", func(d *Demandeur) { d.HeuresHebdo = 0 }, map[string]string{"demandeur.heures_hebdo": "out_of_range"}},
		{"ErrSiret", func(d *Demandeur) { d.Employeur.Siret = "123 456 789 00012" }, map[string]string{"demandeur.employeur.siret": "invalid_siret"}},
		{"ErrHoursTiny", func(d *Demandeur) { d.HeuresHebdo = 0.001 }, map[string]string{"demandeur.heures_hebdo": "out_of_range"}},
		{"OKOneHour", func(d *Demandeur) { d.HeuresHebdo = 1 }, nil},
		// DESIGN.md: at least 16 on date_debut (2026-12-01 here).
		{"ErrTwoYearsOld", func(d *Demandeur) { d.DateNaissance = "2024-05-01" }, map[string]string{"demandeur.date_naissance": "too_young"}},
		{"ErrSixteenTheDayAfter", func(d *Demandeur) { d.DateNaissance = "2010-12-02" }, map[string]string{"demandeur.date_naissance": "too_young"}},
		{"OKSixteenThatDay", func(d *Demandeur) { d.DateNaissance = "2010-12-01" }, nil},
		{"ErrBidiOverride", func(d *Demandeur) { d.Nom = "Dupré\u202Eetpecca" }, map[string]string{"demandeur.nom": "formatting_character"}},
		{"ErrBidiIsolate", func(d *Demandeur) { d.Prenom, d.Emploi = "\u2066Élodie", "vendeuse\u2069" }, map[string]string{"demandeur.prenom": "formatting_character", "demandeur.emploi": "formatting_character"}},
		{"ErrLineSeparator", func(d *Demandeur) { d.Employeur.Adresse = "3 place Bellecour\u202869002 Lyon" }, map[string]string{"demandeur.employeur.adresse": "formatting_character"}},
		{"ErrParagraphSeparator", func(d *Demandeur) { d.LieuNaissance = "Montréal\u2029Canada" }, map[string]string{"demandeur.lieu_naissance": "formatting_character"}},
		{"OKArabicName", func(d *Demandeur) { d.Nom = "محمد" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := validDemandeur()
			tt.change(&d)
			err := d.Validate(20, today)
			got := map[string]string{}
			if e, ok := err.(*Error); ok {
				for _, f := range e.Fields {
					got[f.Field] = f.Code
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.fields) {
				t.Fatalf("fields %v, want %v", got, tt.fields)
			}
			for k, v := range tt.fields {
				if got[k] != v {
					t.Fatalf("fields %v, want %v", got, tt.fields)
				}
			}
		})
	}
}

func TestDecodeDemandeur(t *testing.T) {
	t.Parallel()
	for raw, field := range map[string]string{
		`{"nom": 3}`:           "demandeur.nom",
		`{"colour": "red"}`:    "demandeur.colour",
		`null`:                 "demandeur",
		`{"heures_hebdo":"x"}`: "demandeur.heures_hebdo",
	} {
		_, err := DecodeDemandeur(json.RawMessage(raw))
		e, ok := err.(*Error)
		if !ok || len(e.Fields) != 1 || e.Fields[0].Field != field {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

func TestMergePatch(t *testing.T) {
	t.Parallel()
	out, err := MergePatch(json.RawMessage(`{"a":1,"b":{"c":2,"d":3}}`), json.RawMessage(`{"b":{"c":9,"d":null},"e":"é"}`))
	if err != nil || string(out) != `{"a":1,"b":{"c":9},"e":"é"}` {
		t.Fatalf("%s %v", out, err)
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		" Camille.Martin@Rhone.Gouv.FR ": "camille.martin@rhone.gouv.fr",
		"a@b":                            "",
		"Camille <c@d.fr>":               "",
		"c@d.fr\r\nBcc: x@y.fr":          "",
		"c@d.fr\r\n":                     "",
		"\nc@d.fr":                       "",
		"":                               "",
		// DESIGN.md: ASCII local@domain with a DNS domain, IDN in ASCII form.
		"a@b.fr\u00a0":                         "",
		"a\u00a0b@c.fr":                        "",
		"a b@c.fr":                             "",
		"\xe9lodie@c.fr":                       "",
		"élodie@c.fr":                          "",
		"a@[127.0.0.1]":                        "",
		"a@127.0.0.1":                          "",
		"a@-b.fr":                              "",
		"a@b-.fr":                              "",
		"a@b..fr":                              "",
		".a@b.fr":                              "",
		"a..b@c.fr":                            "",
		`"a b"@c.fr`:                           "",
		"a@b.fr.":                              "",
		"a@b_c.fr":                             "",
		"a@" + strings.Repeat("x", 64) + ".fr": "",
		"a@exämple.fr":                         "a@xn--exmple-cua.fr",
		"A@EXÄMPLE.FR":                         "a@xn--exmple-cua.fr",
		"o'brien+apt@b.fr":                     "o'brien+apt@b.fr",
		"a@xn--exmple-cua.fr":                  "a@xn--exmple-cua.fr",
		"a@sub.domain-1.gouv.fr":               "a@sub.domain-1.gouv.fr",
	} {
		got, ok := NormalizeEmail(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeEmail(%q) = %q, %v", in, got, ok)
		}
	}
}
