package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Demandeur is the APT request: the student, their residence permit and the
// job they want to take.
type Demandeur struct {
	Nom           string      `json:"nom"`
	Prenom        string      `json:"prenom"`
	DateNaissance Date        `json:"date_naissance"`
	LieuNaissance string      `json:"lieu_naissance"`
	Nationalite   string      `json:"nationalite"`
	TitreSejour   TitreSejour `json:"titre_sejour"`
	Etablissement string      `json:"etablissement"`
	Employeur     Employeur   `json:"employeur"`
	Emploi        string      `json:"emploi"`
	HeuresHebdo   float64     `json:"heures_hebdo"`
	DateDebut     Date        `json:"date_debut"`
	DateFin       Date        `json:"date_fin"`

	// notDates are the paths of the dates DecodeDemandeur found written
	// but not real dates (those dates are zero), for Validate to report.
	notDates []string
}

// TitreSejour is the student's residence permit.
type TitreSejour struct {
	Numero   string `json:"numero"`
	ExpireLe Date   `json:"expire_le"`
}

// Employeur is the company that offers the job.
type Employeur struct {
	RaisonSociale string `json:"raison_sociale"`
	Siret         string `json:"siret"`
	Adresse       string `json:"adresse"`
}

// Field length bounds, in characters.
const (
	maxNameLen    = 100
	maxTextLen    = 200
	maxAddressLen = 500
)

// MinAge is the age the applicant has reached on date_debut at the least:
// the age from which the Code du travail lets a student work.
const MinAge = 16

// MinHeuresHebdo is the fewest weekly hours of a job.
const MinHeuresHebdo = 1

// Validate checks every field of d and returns an EInvalid *Error with one
// FieldError per bad field, or nil. heuresMax is the procedure's weekly cap;
// now bounds the birth date, which must be before today in Paris.
func (d *Demandeur) Validate(heuresMax float64, now time.Time) error {
	today := DateOf(now, Paris())
	v := validator{prefix: "demandeur.", notDates: d.notDates}
	v.name("nom", d.Nom)
	v.name("prenom", d.Prenom)
	birth := d.DateNaissance
	okBirth := v.date("date_naissance", birth)
	if okBirth && !birth.Before(today) {
		v.add("date_naissance", "out_of_range", "la date de naissance doit être dans le passé")
		okBirth = false
	} else if okBirth && birth.Before(today.AddYears(-120)) {
		v.add("date_naissance", "out_of_range", "la date de naissance est invraisemblable")
		okBirth = false
	}
	v.text("lieu_naissance", d.LieuNaissance, maxTextLen)
	v.text("nationalite", d.Nationalite, maxNameLen)
	v.text("titre_sejour.numero", d.TitreSejour.Numero, 50)
	okExpire := v.date("titre_sejour.expire_le", d.TitreSejour.ExpireLe)
	v.text("etablissement", d.Etablissement, maxTextLen)
	v.text("employeur.raison_sociale", d.Employeur.RaisonSociale, maxTextLen)
	if !ValidSIRET(d.Employeur.Siret) {
		v.add("employeur.siret", "invalid_siret", "le SIRET doit compter 14 chiffres et respecter sa clé de contrôle")
	}
	v.lines("employeur.adresse", d.Employeur.Adresse, maxAddressLen)
	v.text("emploi", d.Emploi, maxTextLen)
	switch {
	case math.IsNaN(d.HeuresHebdo) || d.HeuresHebdo < MinHeuresHebdo:
		v.add("heures_hebdo", "out_of_range", "le nombre d'heures hebdomadaires doit être d'au moins 1")
	case d.HeuresHebdo > heuresMax:
		v.add("heures_hebdo", "out_of_range", fmt.Sprintf("le nombre d'heures hebdomadaires ne peut dépasser %g", heuresMax))
	}
	okDebut := v.date("date_debut", d.DateDebut)
	okFin := v.date("date_fin", d.DateFin)
	if okDebut && okBirth && d.DateDebut.Before(birth.AddYears(MinAge)) {
		v.add("date_naissance", "too_young", fmt.Sprintf("le demandeur doit avoir au moins %d ans à la date de début", MinAge))
	}
	if okDebut && okFin && d.DateFin.Before(d.DateDebut) {
		v.add("date_fin", "before_date_debut", "la date de fin doit suivre la date de début")
	} else if okFin && okExpire && d.DateFin.After(d.TitreSejour.ExpireLe) {
		v.add("date_fin", "after_titre_sejour", "l'autorisation ne peut dépasser la validité du titre de séjour")
	}
	return invalid(v.errs)
}

// validator collects field errors.
type validator struct {
	prefix   string
	notDates []string // see Demandeur.notDates
	errs     []FieldError
}

func (v *validator) add(field, code, detail string) {
	v.errs = append(v.errs, FieldError{Field: v.prefix + field, Code: code, Detail: detail})
}

// text checks a required, bounded, printable single-line string.
func (v *validator) text(field, s string, max int) bool {
	return v.check(field, s, max, unicode.IsControl)
}

// lines checks a required, bounded, printable string that may span lines
// (an address).
func (v *validator) lines(field, s string, max int) bool {
	return v.check(field, s, max, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' })
}

func (v *validator) check(field, s string, max int, bad func(rune) bool) bool {
	switch {
	case !utf8.ValidString(s):
		v.add(field, "invalid_utf8", "ce champ n'est pas de l'UTF-8 valide")
	case strings.TrimSpace(s) == "":
		v.add(field, "required", "ce champ est obligatoire")
	case utf8.RuneCountInString(s) > max:
		v.add(field, "too_long", fmt.Sprintf("ce champ dépasse %d caractères", max))
	case strings.IndexFunc(s, bad) >= 0:
		v.add(field, "control_character", "ce champ contient un caractère de contrôle")
	case strings.IndexFunc(s, spoofing) >= 0:
		v.errs = append(v.errs, spoofingField(v.prefix+field))
	default:
		return true
	}
	return false
}

// name checks a person's name: a bounded text with at least one letter.
func (v *validator) name(field, s string) {
	if v.text(field, s, maxNameLen) && strings.IndexFunc(s, unicode.IsLetter) < 0 {
		v.add(field, "invalid_name", "un nom doit contenir au moins une lettre")
	}
}

// date checks a required, real date.
func (v *validator) date(field string, d Date) bool {
	switch {
	case slices.Contains(v.notDates, field) || !d.IsZero() && !d.IsValid():
		v.add(field, "invalid_date", "date invalide : format attendu AAAA-MM-JJ, date réelle")
	case d.IsZero():
		v.add(field, "required", "ce champ est obligatoire")
	default:
		return true
	}
	return false
}

// ValidSIRET reports whether s is 14 digits passing the Luhn check. La Poste's
// establishments (SIREN 356000000) use their own rule: the digit sum is a
// multiple of 5.
func ValidSIRET(s string) bool {
	if len(s) != 14 {
		return false
	}
	sum, digits := 0, 0
	for i := 0; i < 14; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		digits += d
		if i%2 == 0 { // from the right, every second digit: positions 13, 11, ... are even from the left
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	if strings.HasPrefix(s, "356000000") && s != "35600000000048" {
		return digits%5 == 0
	}
	return sum%10 == 0
}

// DecodeDemandeur decodes a demandeur from JSON, refusing unknown fields, and
// turns decoding failures into field errors.
func DecodeDemandeur(raw json.RawMessage) (Demandeur, error) {
	var d Demandeur
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return d, invalid([]FieldError{{Field: "demandeur", Code: "required", Detail: "le demandeur est obligatoire"}})
	}
	raw, notDates := setAsideNotDates(raw)
	if err := DecodeJSON(raw, &d); err != nil {
		return d, invalid([]FieldError{jsonFieldError("demandeur", err)})
	}
	d.notDates = notDates
	return d, nil
}

// demandeurDates are the paths of the demandeur's dates in its JSON, which
// are also the names of their field errors.
var demandeurDates = []string{"date_naissance", "titre_sejour.expire_le", "date_debut", "date_fin"}

// setAsideNotDates takes out of a demandeur object the dates written as
// strings that are not real dates, and returns their paths. Left in, the
// first would stop the decoding (Date refuses it) and hide every other bad
// field; set aside, they are reported by Validate with the others. Anything
// that is not an object is returned as it is, for the decoding to refuse.
func setAsideNotDates(raw json.RawMessage) (json.RawMessage, []string) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw, nil
	}
	var notDates []string
	for _, path := range demandeurDates {
		if removeNotDate(obj, strings.Split(path, ".")) {
			notDates = append(notDates, path)
		}
	}
	if notDates == nil {
		return raw, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return raw, nil
	}
	return out, notDates
}

// removeNotDate removes from obj the value at path if it is a string other
// than "" and not a real date, and reports whether it did. Keys match
// whatever their case, as encoding/json matches them to fields.
func removeNotDate(obj map[string]json.RawMessage, path []string) bool {
	removed := false
	for k, v := range obj {
		if !strings.EqualFold(k, path[0]) {
			continue
		}
		if len(path) > 1 {
			var sub map[string]json.RawMessage
			if json.Unmarshal(v, &sub) == nil && removeNotDate(sub, path[1:]) {
				obj[k], _ = json.Marshal(sub) // it was just unmarshalled
				removed = true
			}
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil || s == "" {
			continue // not a string (the decoding says so) or empty (Validate: required)
		}
		if _, err := ParseDate(s); err != nil {
			delete(obj, k)
			removed = true
		}
	}
	return removed
}

// MergePatch applies an RFC 7396 JSON merge patch to a JSON object: the
// fields of patch replace those of doc, recursively; null removes a field.
func MergePatch(doc, patch json.RawMessage) (json.RawMessage, error) {
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	return json.Marshal(mergeValue(d, p))
}

func mergeValue(doc, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	dm, ok := doc.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(dm, k)
			continue
		}
		dm[k] = mergeValue(dm[k], v)
	}
	return dm
}
