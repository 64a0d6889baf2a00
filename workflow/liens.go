package workflow

import (
	"net/url"
	"strconv"
	"strings"
)

// Liens are a procedure's links to a dossier in the applications people
// use: URL templates in which {id} stands for the dossier's number, e.g.
// « https://demarche.rhone.gouv.fr/dossiers/{id} ». E-mails to the applicant
// link to their dossier with Usager, e-mails to instructeurs to each dossier
// they list with Instructeur. An empty template means no link: aptflow has
// no pages of its own for a dossier.
type Liens struct {
	Usager      string `json:"usager,omitempty"`
	Instructeur string `json:"instructeur,omitempty"`
}

// LienPlaceholder is what a link template replaces with the dossier's id.
const LienPlaceholder = "{id}"

// maxLienLen bounds a link template, in bytes: a URL in an e-mail, not a
// document.
const maxLienLen = 2000

// DossierURL is the link template tpl for dossier id, or "" when tpl is
// "". The id is digits: it needs no escaping anywhere in a URL.
func DossierURL(tpl string, id int64) string {
	if tpl == "" {
		return ""
	}
	return strings.ReplaceAll(tpl, LienPlaceholder, strconv.FormatInt(id, 10))
}

// validate adds a FieldError for each link template that is not an
// absolute http(s) URL with {id} in it.
func (l Liens) validate(v *validator) {
	for field, tpl := range map[string]string{"liens.usager": l.Usager, "liens.instructeur": l.Instructeur} {
		if tpl == "" {
			continue
		}
		if code, detail := checkLien(tpl); code != "" {
			v.add(field, code, detail)
		}
	}
}

// checkLien returns the code and detail of what is wrong with a link
// template, or "" if nothing is. A link that a reader clicks in an e-mail
// from the préfecture must go where it says: printable ASCII only (an
// internationalised host in its xn-- form, a path percent-encoded: no
// space, control or bidirectional character can hide in it), no user info
// (« https://prefecture.gouv.fr@evil.example/ »), only http and https.
func checkLien(tpl string) (code, detail string) {
	if len(tpl) > maxLienLen {
		return "too_long", "ce lien dépasse 2000 caractères"
	}
	if !strings.Contains(tpl, LienPlaceholder) {
		return "missing_id", "le lien doit contenir {id}, remplacé par le numéro du dossier"
	}
	if strings.ContainsFunc(tpl, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "invalid_url", "le lien ne doit contenir que des caractères ASCII visibles (encodez les autres : %C3%A9)"
	}
	u, err := url.Parse(DossierURL(tpl, 1))
	switch {
	case err != nil:
		return "invalid_url", "le lien n'est pas une URL valide"
	case u.Scheme != "https" && u.Scheme != "http":
		return "invalid_url", "le lien doit commencer par https:// (ou http://)"
	case u.Host == "" || u.Hostname() == "":
		return "invalid_url", "le lien doit nommer un serveur"
	case u.User != nil:
		return "invalid_url", "le lien ne doit pas contenir d'identifiant (user@)"
	}
	return "", ""
}
