package workflow_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aptflow/aptflow/internal/dbtest"
	"github.com/aptflow/aptflow/workflow"
)

// TestKindsNeverChange: the kinds are stored with each delivery and each
// activity: renaming one would orphan every row written before.
func TestKindsNeverChange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got  []string
		want string
	}{
		{workflow.MailKinds(), "en_instruction en_construction accepte refuse message_usager notification digest stale_instructeur stale_usager expiration_usager"},
		{workflow.ActivityKinds(), "message_usager message_instructeur avis modification"},
	} {
		if got := strings.Join(tc.got, " "); got != tc.want {
			t.Errorf("kinds %s, want %s", got, tc.want)
		}
	}
}

// TestActivityKindsInDatabase: the database accepts exactly the activity
// kinds of workflow (activities_kind_check).
func TestActivityKindsInDatabase(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	var def string
	if err := pool.QueryRow(t.Context(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'activities'::regclass AND conname = 'activities_kind_check'`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	var allowed []string
	for _, m := range regexp.MustCompile(`'([a-z_]+)'`).FindAllStringSubmatch(def, -1) {
		allowed = append(allowed, m[1])
	}
	want := workflow.ActivityKinds()
	slices.Sort(allowed)
	slices.Sort(want)
	if !slices.Equal(allowed, want) {
		t.Errorf("the database allows %v (%s), workflow declares %v", allowed, def, want)
	}
}
