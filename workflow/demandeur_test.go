package workflow

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validDemandeur() Demandeur {
	return Demandeur{
		Nom: "Dupré", Prenom: "Élodie", DateNaissance: Date{2003, time.April, 12}, LieuNaissance: "Montréal",
		Nationalite: "canadienne", TitreSejour: TitreSejour{Numero: "6912345678", ExpireLe: Date{2027, time.September, 30}},
		Etablissement: "Université Lyon 2",
		Employeur:     Employeur{RaisonSociale: "Boulangerie", Siret: "73282932000074", Adresse: "3 place Bellecour"},
		Emploi:        "vendeuse", HeuresHebdo: 17.5, DateDebut: Date{2026, time.December, 1}, DateFin: Date{2027, time.June, 30},
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

// TestDemandeurValidate decodes a valid demandeur changed by a JSON merge
// patch, as the API does, and validates it: every bad field has its entry.
func TestDemandeurValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC) // 01:00 in Paris
	tests := []struct {
		name   string
		patch  string
		now    time.Time // default: now
		fields map[string]string
	}{
		{"OK", `{}`, time.Time{}, nil},
		{"OKUnicode", `{"nom": "王", "prenom": "Łukasz-Œdipe"}`, time.Time{}, nil},
		{"ErrRequired", `{"nom": " ", "emploi": ""}`, time.Time{}, map[string]string{"demandeur.nom": "required", "demandeur.emploi": "required"}},
		{"ErrTooLong", `{"prenom": "` + strings.Repeat("é", 101) + `"}`, time.Time{}, map[string]string{"demandeur.prenom": "too_long"}},
		{"ErrControl", `{"nom": "Du\npré"}`, time.Time{}, map[string]string{"demandeur.nom": "control_character"}},
		{"ErrNoLetter", `{"nom": "1234"}`, time.Time{}, map[string]string{"demandeur.nom": "invalid_name"}},
		{"ErrDate", `{"date_naissance": "2003-13-01", "titre_sejour": {"expire_le": "31/12/2027"}}`, time.Time{}, map[string]string{"demandeur.date_naissance": "invalid_date", "demandeur.titre_sejour.expire_le": "invalid_date"}},
		{"ErrDateNotReal", `{"date_debut": "2027-02-29", "date_fin": "2026-12-1"}`, time.Time{}, map[string]string{"demandeur.date_debut": "invalid_date", "demandeur.date_fin": "invalid_date"}},
		{"ErrDateAndName", `{"nom": "", "Date_Debut": "2026-12-01T00:00:00Z"}`, time.Time{}, map[string]string{"demandeur.nom": "required", "demandeur.date_debut": "invalid_date"}},
		{"ErrDateRequired", `{"date_debut": "", "date_fin": null}`, time.Time{}, map[string]string{"demandeur.date_debut": "required", "demandeur.date_fin": "required"}},
		{"ErrDateType", `{"date_debut": 20261201}`, time.Time{}, map[string]string{"demandeur.date_debut": "invalid_type"}},
		{"ErrFutureBirth", `{"date_naissance": "2030-01-01"}`, time.Time{}, map[string]string{"demandeur.date_naissance": "out_of_range"}},
		{"ErrBornToday", `{"date_naissance": "2026-11-26"}`, time.Time{}, map[string]string{"demandeur.date_naissance": "out_of_range"}},
		// 23:30 UTC on the 25th is the 26th in Paris: born on the 25th is
		// born yesterday, not today.
		// (Then too young to work, not born in the future.)
		{"BornYesterdayInParis", `{"date_naissance": "2026-11-25"}`, time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC), map[string]string{"demandeur.date_naissance": "too_young"}},
		{"OKOldest", `{"date_naissance": "1906-11-26"}`, time.Time{}, nil},
		{"ErrTooOld", `{"date_naissance": "1906-11-25"}`, time.Time{}, map[string]string{"demandeur.date_naissance": "out_of_range"}},
		{"OKOneDay", `{"date_debut": "2027-06-30"}`, time.Time{}, nil},
		{"ErrOrder", `{"date_debut": "2027-01-02", "date_fin": "2027-01-01"}`, time.Time{}, map[string]string{"demandeur.date_fin": "before_date_debut"}},
		{"OKLastDayOfPermit", `{"date_fin": "2027-09-30"}`, time.Time{}, nil},
		{"ErrBeyondPermit", `{"date_fin": "2027-10-01"}`, time.Time{}, map[string]string{"demandeur.date_fin": "after_titre_sejour"}},
		{"ErrHours", `{"heures_hebdo": 20.5}`, time.Time{}, map[string]string{"demandeur.heures_hebdo": "out_of_range"}},
		{"ErrHoursZero", `{"heures_hebdo": 0}`, time.Time{}, map[string]string{"demandeur.heures_hebdo": "out_of_range"}},
		{"ErrSiret", `{"employeur": {"siret": "123 456 789 00012"}}`, time.Time{}, map[string]string{"demandeur.employeur.siret": "invalid_siret"}},
		{"ErrHoursTiny", `{"heures_hebdo": 0.001}`, time.Time{}, map[string]string{"demandeur.heures_hebdo": "out_of_range"}},
		{"OKOneHour", `{"heures_hebdo": 1}`, time.Time{}, nil},
		// DESIGN.md: at least 16 on date_debut (2026-12-01 here).
		{"ErrTwoYearsOld", `{"date_naissance": "2024-05-01"}`, time.Time{}, map[string]string{"demandeur.date_naissance": "too_young"}},
		{"ErrSixteenTheDayAfter", `{"date_naissance": "2010-12-02"}`, time.Time{}, map[string]string{"demandeur.date_naissance": "too_young"}},
		{"OKSixteenThatDay", `{"date_naissance": "2010-12-01"}`, time.Time{}, nil},
		{"ErrBidiOverride", `{"nom": "Dupré\u202Eetpecca"}`, time.Time{}, map[string]string{"demandeur.nom": "formatting_character"}},
		{"ErrBidiIsolate", `{"prenom": "\u2066Élodie", "emploi": "vendeuse\u2069"}`, time.Time{}, map[string]string{"demandeur.prenom": "formatting_character", "demandeur.emploi": "formatting_character"}},
		{"ErrLineSeparator", `{"employeur": {"adresse": "3 place Bellecour\u202869002 Lyon"}}`, time.Time{}, map[string]string{"demandeur.employeur.adresse": "formatting_character"}},
		{"ErrParagraphSeparator", `{"lieu_naissance": "Montréal\u2029Canada"}`, time.Time{}, map[string]string{"demandeur.lieu_naissance": "formatting_character"}},
		{"OKArabicName", `{"nom": "محمد"}`, time.Time{}, nil},
	}
	valid, err := json.Marshal(validDemandeur())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := MergePatch(valid, json.RawMessage(tt.patch))
			if err != nil {
				t.Fatal(err)
			}
			d, err := DecodeDemandeur(raw)
			if err == nil {
				at := now
				if !tt.now.IsZero() {
					at = tt.now
				}
				err = d.Validate(20, at)
			}
			got := map[string]string{}
			if e, ok := err.(*Error); ok {
				for _, f := range e.Fields {
					if _, dup := got[f.Field]; dup {
						t.Errorf("two entries for %s", f.Field)
					}
					got[f.Field] = f.Code
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.fields) {
				t.Fatalf("fields %v, want %v", got, tt.fields)
			}
		})
	}
}

// TestDemandeurJSON: the demandeur's JSON, dates included, is what it was
// when the dates were strings: stored dossiers read back unchanged.
func TestDemandeurJSON(t *testing.T) {
	t.Parallel()
	const stored = `{"nom":"Dupré","prenom":"Élodie","date_naissance":"2003-04-12","lieu_naissance":"Montréal",` +
		`"nationalite":"canadienne","titre_sejour":{"numero":"6912345678","expire_le":"2027-09-30"},` +
		`"etablissement":"Université Lyon 2","employeur":{"raison_sociale":"Boulangerie","siret":"73282932000074",` +
		`"adresse":"3 place Bellecour"},"emploi":"vendeuse","heures_hebdo":17.5,"date_debut":"2026-12-01","date_fin":"2027-06-30"}`
	d, err := DecodeDemandeur(json.RawMessage(stored))
	if err != nil {
		t.Fatal(err)
	}
	if want := validDemandeur(); !reflect.DeepEqual(d, want) {
		t.Fatalf("decoded %+v\nwant %+v", d, want)
	}
	out, err := json.Marshal(d)
	if err != nil || string(out) != stored {
		t.Fatalf("marshalled %s, %v\nwant %s", out, err, stored)
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
