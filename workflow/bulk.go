package workflow

// bulkMail are the kinds of e-mail sent in bulk: many at once, by a scan or
// a schedule, to people who are not waiting for them. A new bulk kind is
// one line here.
var bulkMail = map[string]bool{
	MailDigest:           true,
	MailStaleInstructeur: true,
	MailStaleUsager:      true,
	MailExpirationUsager: true,
}

// IsBulkMail reports whether e-mails of this kind are bulk mail, which goes
// behind the e-mails a person waits for (decisions, instruction, messages,
// notifications) on a queue of its own, paced by SMTP_MAX_RATE: a stale
// scan's fifty thousand reminders must not hold back an acceptance.
func IsBulkMail(kind string) bool { return bulkMail[kind] }
