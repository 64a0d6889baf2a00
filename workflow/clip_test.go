package workflow

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestClip: clip cuts between characters, never inside one, and leaves
// nothing PostgreSQL refuses in text (invalid UTF-8, NUL).
func TestClip(t *testing.T) {
	t.Parallel()
	a := strings.Repeat("a", 999)
	for name, tc := range map[string]struct{ in, want string }{
		"Short":           {"550 no such user", "550 no such user"},
		"Exact":           {a + "b", a + "b"},
		"ASCII":           {a + "bc", a + "b"},
		"MultiByteAtEdge": {a + "éé", a + "é"}, // the 1000th character straddles byte 1000
		"FourBytes":       {a + "😀x", a + "😀"},
		"InvalidUTF8":     {"bad \xff\xfe reply", "bad \uFFFD reply"},
		"NUL":             {"a\x00b", "a\uFFFDb"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := clip(tc.in, 1000)
			if got != tc.want {
				t.Errorf("clip = %q…, want %q…", tail(got), tail(tc.want))
			}
			if !utf8.ValidString(got) || strings.ContainsRune(got, 0) || utf8.RuneCountInString(got) > 1000 {
				t.Errorf("clip gave %d characters, valid UTF-8 %v", utf8.RuneCountInString(got), utf8.ValidString(got))
			}
		})
	}
}

// tail is the end of s, enough to see a cut.
func tail(s string) string { return s[max(0, len(s)-8):] }
