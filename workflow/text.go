package workflow

import (
	"strings"

	"golang.org/x/net/idna"
)

// spoofing reports whether r may make a text shown to a person say
// something else than what it holds: the bidirectional embeddings,
// overrides and isolates (U+202A–U+202E, U+2066–U+2069) reorder the text
// around them (« Élodie\u202Eetpecca » reads « Élodie accepté »), and the
// Unicode line and paragraph separators (U+2028, U+2029) break a line where
// the sender shows one. Names and free text refuse them (DESIGN.md).
func spoofing(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') || r == '\u2028' || r == '\u2029'
}

// spoofingField is the FieldError of a text holding a spoofing character.
func spoofingField(field string) FieldError {
	return FieldError{Field: field, Code: "formatting_character",
		Detail: "ce champ contient un caractère qui change l'ordre ou les lignes du texte (U+202A–U+202E, U+2066–U+2069, U+2028, U+2029)"}
}

// idnaProfile turns an internationalised domain into its ASCII form
// (« exämple.fr » → « xn--exmple-cua.fr »), with the checks of a name that
// can be looked up in the DNS.
var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.StrictDomainName(true), idna.ValidateLabels(true))

// NormalizeEmail checks a bare e-mail address and returns it lower-cased,
// its domain in ASCII form: an ASCII local part (dot-atom: no spaces, no
// quotes, no raw 8-bit bytes) and a DNS domain name of two labels or more,
// each of letters, digits and inner hyphens, the last not all digits (no
// domain literal such as « [127.0.0.1] », no bare IP address). An
// internationalised domain is accepted and stored in its ASCII form.
func NormalizeEmail(s string) (string, bool) {
	// Only ASCII blanks around it are forgiven: a line break is refused even
	// at the ends (it is what a header injection is made of), and so is any
	// other space (a no-break space copied from a document).
	s = strings.Trim(s, " \t")
	if s == "" || len(s) > 254 {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", false
	}
	local, domain := strings.ToLower(s[:at]), s[at+1:]
	if !validLocalPart(local) {
		return "", false
	}
	domain, err := idnaProfile.ToASCII(domain)
	if err != nil || !validDomain(domain) {
		return "", false
	}
	addr := local + "@" + domain
	if len(addr) > 254 {
		return "", false
	}
	return addr, true
}

// validLocalPart: 1 to 64 characters of RFC 5322's atext, in dot-separated
// non-empty atoms.
func validLocalPart(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			c := atom[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
				return false
			}
		}
	}
	return true
}

// validDomain: an ASCII host name of two labels or more, each 1 to 63
// letters, digits and hyphens, not starting or ending with a hyphen; the
// top-level label is not all digits (which would make it an IP address).
func validDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
