package mailer

import (
	"fmt"
	netmail "net/mail"
	"strings"
	"unicode/utf8"
)

// The mailer writes the header fields that carry text (Subject) and
// display names (From, To, Reply-To) itself, rather than through go-mail:
// go-mail encodes a value into RFC 2047 encoded-words of up to 75
// characters and folds before any word that does not fit, the first one
// included, so that a long French subject started on a continuation line
// (« Subject:\r\n =?UTF-8?q?…?= »), which some parsers read with a leading
// space. Here the first word is cut to fit beside the field name.

// maxLine is the longest header line written, CRLF excluded: RFC 2047
// § 2 limits a line holding encoded-words to 76 characters.
const maxLine = 76

// maxWord is the longest encoded-word (RFC 2047 § 2).
const maxWord = 75

// wordPrefix and wordSuffix frame an encoded-word: UTF-8, Q encoding.
const (
	wordPrefix = "=?UTF-8?q?"
	wordSuffix = "?="
)

// foldField returns the field « name: value » (without the final CRLF) for
// an unstructured text such as a subject: as it is if it is printable ASCII
// that cannot be mistaken for an encoded-word, folded between words;
// otherwise as encoded-words. The value always starts on the field's line.
func foldField(name, text string) string {
	if plainText(text) {
		return fold(name, strings.Fields(text))
	}
	return fold(name, encodeWords(text, maxLine-len(name)-len(": ")))
}

// addressField returns the field « name: value » (without the final CRLF)
// for one address: its display name as plain words when they are atoms,
// otherwise as encoded-words, then the address in angle brackets. The
// address must be ASCII (parseAddress checks it).
func addressField(name string, a *netmail.Address) string {
	angle := "<" + a.Address + ">"
	switch {
	case a.Name == "":
		return fold(name, []string{angle})
	case atoms(a.Name):
		return fold(name, append(strings.Fields(a.Name), angle))
	}
	return fold(name, append(encodeWords(a.Name, maxLine-len(name)-len(": ")), angle))
}

// fold joins words with single spaces into the value of field name,
// breaking the line before a word that would make it longer than maxLine,
// never before the first one.
func fold(name string, words []string) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(":")
	line := b.Len()
	for i, w := range words {
		if i > 0 && line+1+len(w) > maxLine {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteString(" ")
		b.WriteString(w)
		line += 1 + len(w)
	}
	return b.String()
}

// encodeWords encodes s as UTF-8 Q encoded-words (RFC 2047), the first at
// most first characters long (but at least one character of s), the others
// maxWord, each holding whole characters. Adjacent encoded-words are joined
// without their separating space by decoders, so the spaces of s are
// encoded in the words (as « _ »).
func encodeWords(s string, first int) []string {
	limit := min(first, maxWord) - len(wordPrefix) - len(wordSuffix)
	var words []string
	var cur strings.Builder
	flush := func() {
		words = append(words, wordPrefix+cur.String()+wordSuffix)
		cur.Reset()
		limit = maxWord - len(wordPrefix) - len(wordSuffix)
	}
	for _, r := range s {
		enc := qEncodeRune(r)
		if cur.Len() > 0 && cur.Len()+len(enc) > limit {
			flush()
		}
		cur.WriteString(enc)
	}
	if cur.Len() > 0 || len(words) == 0 {
		flush()
	}
	return words
}

// qEncodeRune is r in the Q encoding, restricted to the characters that
// RFC 2047 § 5 (3) allows in a phrase, so that the same words serve in a
// subject and in a display name.
func qEncodeRune(r rune) string {
	switch {
	case r == ' ':
		return "_"
	case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!*+-/", r)):
		return string(r)
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	var b strings.Builder
	for _, c := range buf[:n] {
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

// plainText reports whether s can go in a header as it is: printable ASCII
// and spaces, and nothing a decoder would take for an encoded-word.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return !strings.Contains(s, "=?")
}

// atoms reports whether a display name is atoms separated by spaces (RFC
// 5322 § 3.2.3), which need no quoting or encoding.
func atoms(s string) bool {
	if strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range s {
		if r != ' ' && !isAtext(r) {
			return false
		}
	}
	return !strings.Contains(s, "=?")
}
