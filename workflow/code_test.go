package workflow

import (
	"regexp"
	"testing"
)

// TestVerificationCode: a verification code is 160 random bits (32 base32
// characters, 5 bits each), so that the public page cannot be searched by
// guessing; a thousand codes are a thousand different ones.
func TestVerificationCode(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^[a-z2-7]{32}$`)
	seen := map[string]bool{}
	for range 1000 {
		code, err := newVerificationCode()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(code) {
			t.Fatalf("code %q is not 32 base32 characters (160 bits)", code)
		}
		if seen[code] {
			t.Fatalf("code %q drawn twice", code)
		}
		seen[code] = true
	}
}
