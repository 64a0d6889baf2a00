package templates

import (
	"strings"
	"unicode/utf8"
)

// NBSP is the no-break space (U+00A0) of French typography.
const NBSP = '\u00a0'

// Typo applies French typography to a plain text: the space before « : »,
// « ; », « ! » and « ? » and the spaces inside « » become no-break spaces,
// so that no line breaks between a word and its punctuation (a line that
// starts with « : » or ends with « »). A missing space inside guillemets is
// added (« «Télérecours» »); one is never added before the other signs,
// which URLs and times (« https: », « 14:05 ») hold without a space. A
// space at the start of a line (an indentation) is kept. Typo is
// idempotent. Every e-mail goes through it (Templates.Email), subject, text
// and HTML; any other French text aptflow renders may use it too.
func Typo(s string) string {
	var t typographer
	t.text(s)
	return t.String()
}

// TypoHTML is Typo for an HTML document: it changes the text between the
// tags and leaves the tags (their names and attributes, URLs included)
// byte for byte. Text is what html/template writes: a « < » in it is
// always escaped, so every « < » starts a tag.
func TypoHTML(s string) string {
	var t typographer
	for s != "" {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			t.text(s)
			break
		}
		t.text(s[:i])
		s = s[i:]
		j := strings.IndexByte(s, '>')
		if j < 0 {
			t.raw(s)
			break
		}
		t.raw(s[:j+1])
		s = s[j+1:]
	}
	return t.String()
}

// typographer builds the output; what it wrote last is the context of the
// next text (a space after a tag is not at the start of a line).
type typographer struct {
	strings.Builder
	last rune // the last rune written, 0 at the start
}

func (t *typographer) raw(s string) {
	t.WriteString(s)
	if r, _ := utf8.DecodeLastRuneInString(s); r != utf8.RuneError {
		t.last = r
	}
}

func (t *typographer) put(r rune) {
	t.WriteRune(r)
	t.last = r
}

// isBlank is a space that typography may turn into a no-break one: the
// ordinary space, and the no-break spaces (narrow or not) already there.
func isBlank(r rune) bool { return r == ' ' || r == NBSP || r == '\u202f' }

func (t *typographer) text(s string) {
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case isBlank(r):
			j := i
			for j < len(rs) && isBlank(rs[j]) {
				j++
			}
			lineStart := t.last == 0 || t.last == '\n'
			if !lineStart && (t.last == '«' || j < len(rs) && strings.ContainsRune(":;!?»", rs[j])) {
				t.put(NBSP)
			} else {
				for _, b := range rs[i:j] {
					t.put(b)
				}
			}
			i = j - 1
		case r == '«':
			t.put(r)
			if i+1 < len(rs) && !isBlank(rs[i+1]) && rs[i+1] != '\n' {
				t.put(NBSP)
			}
		case r == '»':
			if t.last != NBSP && t.last != '\n' && t.last != 0 {
				t.put(NBSP)
			}
			t.put(r)
		default:
			t.put(r)
		}
	}
}
