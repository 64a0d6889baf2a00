package workflow

import "testing"

// TestMustLoadLocation: a zone that cannot be loaded stops the program; it
// never becomes UTC.
func TestMustLoadLocation(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an unknown zone")
		}
	}()
	loc := mustLoadLocation("Nowhere/Atlantis")
	t.Fatalf("loaded %v", loc)
}
