package workflow_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/aptflow/aptflow/internal/dbtest"
)

// TestMain gives the examples a database of their own: they connect to
// DATABASE_URL, as an upstream application would, and it is dropped at the
// end. The tests make their own (internal/apptest).
func TestMain(m *testing.M) {
	url, drop, err := dbtest.Create()
	if err != nil {
		fmt.Fprintln(os.Stderr, "workflow examples:", err)
		os.Exit(1)
	}
	if err := os.Setenv("DATABASE_URL", url); err != nil {
		fmt.Fprintln(os.Stderr, "workflow examples:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := drop(); err != nil {
		fmt.Fprintln(os.Stderr, "workflow examples:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}
