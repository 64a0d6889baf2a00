package workflow

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAttestationStatus checks each status at its boundaries. The instants
// are given in UTC, the machine's zone whatever it is: the first valid day
// starts at midnight in Paris, which is 23:00 UTC the day before in winter,
// and the last one ends at 22:00 UTC in summer.
func TestAttestationStatus(t *testing.T) {
	t.Parallel()
	day := func(s string) Date {
		d, err := ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	const debut, fin, titre = "2026-12-01", "2027-06-30", "2027-09-30"
	utc := func(s string) time.Time {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	for _, tc := range []struct {
		name, at, titre string
		purged          bool
		want            string
	}{
		{"DayBeforeFirst", "2026-11-30T22:59:59Z", titre, false, StatusPasEncoreValide},
		{"FirstDayInParisStillDayBeforeInUTC", "2026-11-30T23:00:00Z", titre, false, StatusValide},
		{"LastDayInParis", "2027-06-30T21:59:59Z", titre, false, StatusValide},
		{"DayAfterLastInParisStillLastInUTC", "2027-06-30T22:00:00Z", titre, false, StatusExpiree},
		{"LongAfter", "2031-01-01T12:00:00Z", titre, false, StatusExpiree},
		// The residence permit ends first: so does the authorisation.
		{"TitreLastDay", "2027-03-31T21:59:59Z", "2027-03-31", false, StatusValide},
		{"TitreExpired", "2027-03-31T22:00:00Z", "2027-03-31", false, StatusExpiree},
		{"TitreSameDayAsFin", "2027-06-30T12:00:00Z", fin, false, StatusValide},
		{"TitreSameDayAsFinAfter", "2027-06-30T22:00:00Z", fin, false, StatusExpiree},
		{"Purged", "2027-01-15T12:00:00Z", titre, true, StatusSupprimee},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			today := ParisToday(utc(tc.at))
			if got := AttestationStatus(today, day(debut), day(fin), day(tc.titre), tc.purged); got != tc.want {
				t.Errorf("at %s (Paris %s): %s, want %s", tc.at, today, got, tc.want)
			}
		})
	}
}

func TestNormalizeCode(t *testing.T) {
	t.Parallel()
	const want = "k7q2m9xd4hpab3cdefghjkmnpqrstvwx"
	for _, typed := range []string{
		want,
		"K7Q2M9XD4HPAB3CDEFGHJKMNPQRSTVWX",
		"K7Q2 M9XD 4HPA B3CD EFGH JKMN PQRS TVWX",
		"k7q2-m9xd-4hpa-b3cd-efgh-jkmn-pqrs-tvwx",
		" K7Q2\u00a0M9XD–4HPA B3CD efgh JKMN PQRS TVWX ",
	} {
		if got := NormalizeCode(typed); got != want {
			t.Errorf("NormalizeCode(%q) = %q", typed, got)
		}
	}
}

func TestMaskTitre(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"6912345678": "••••••5678", "AB12": "••••", "": "", "ÉÉ12345": "•••2345"} {
		if got := maskTitre(in); got != want {
			t.Errorf("maskTitre(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerificationJSONPurged: a purged attestation says nothing but its
// status, validity and dossier.
func TestVerificationJSONPurged(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Verification{Status: StatusSupprimee, DossierID: 7, Nom: "Dupré", SHA256: "ab"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `{"status":"supprimee","valid":false,"dossier_id":7}` {
		t.Errorf("JSON %s", got)
	}
}

// TestVerificationPurged: once the dossier is purged, the verification
// keeps its status and dossier alone, whatever the demandeur still said.
func TestVerificationPurged(t *testing.T) {
	t.Parallel()
	dem := Demandeur{Nom: "Dupré", Prenom: "Élodie", DateDebut: Date{2026, time.January, 1}, DateFin: Date{2026, time.June, 30}}
	dem.TitreSejour.Numero = "6912345678"
	today := Date{2026, time.March, 1}
	got := verification(Verification{DossierID: 7, SHA256: "ab", Signed: true, Service: "Préfecture"}, dem, nil, today, true)
	if want := (Verification{Status: StatusSupprimee, DossierID: 7}); *got != want {
		t.Errorf("purged: %+v, want %+v", *got, want)
	}
	got = verification(Verification{DossierID: 7}, dem, nil, today, false)
	if got.Status != StatusValide || !got.Valid || got.Nom != "Dupré" || got.TitreSejourNumero != "••••••5678" ||
		got.ValidUntil != dem.DateFin {
		t.Errorf("not purged: %+v", *got)
	}
}
