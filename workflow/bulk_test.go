package workflow

import (
	"slices"
	"testing"
)

// TestBulkMailKinds: every bulk kind is an e-mail kind, and the scans' and
// schedules' e-mails are bulk (stale reminders, digests, retention
// notices), no other. Migration 00009 moved the queued e-mails of these
// kinds to the bulk queue.
func TestBulkMailKinds(t *testing.T) {
	t.Parallel()
	var bulk []string
	for _, k := range MailKinds() {
		if IsBulkMail(k) {
			bulk = append(bulk, k)
		}
	}
	if want := []string{MailDigest, MailStaleInstructeur, MailStaleUsager, MailExpirationUsager}; !slices.Equal(bulk, want) {
		t.Errorf("bulk kinds %v, want %v", bulk, want)
	}
	for k := range bulkMail {
		if !slices.Contains(MailKinds(), k) {
			t.Errorf("bulk kind %q is no e-mail kind", k)
		}
	}
}
