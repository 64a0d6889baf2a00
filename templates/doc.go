// Package templates holds what people read: the French e-mails that aptflow
// sends to applicants (usagers) and instructors (instructeurs).
//
// Every e-mail kind has a plain-text template (email/KIND.txt, which also
// defines the subject) and an HTML template (email/KIND.html). Both are
// embedded in the binary and parsed once by [Load]; Load also renders every
// kind with sample data, so a broken template stops the process at start
// instead of failing the first e-mail of that kind hours later.
//
// Subjects and plain text use text/template; HTML uses html/template, so a
// name such as « <script> » is escaped, never interpreted. Subjects are single
// lines whatever the data holds, and carry no personal data other than the
// dossier number: they show up in notification previews and server logs.
//
// Dates are shown in French (« 26 novembre 2026 »): a calendar date
// (workflow.Date) as it is, an instant in the Europe/Paris time zone
// (« 26/11/2026 à 14:05 »), workflow.Paris(), whose database is embedded.
//
// What every e-mail shares, whatever its template: French typography
// ([Typo], [TypoHTML]: a no-break space before « : ; ! ? » and inside « »)
// is applied to the subject, the text and the HTML after rendering; each
// is signed by the service alone (ServiceNom), never by the software; a
// link to the dossier (EmailData.DossierURL, DossierSummary.URL: the
// procedure's liens, expanded by the jobs) shows through the layout's
// "lien" (text) and "bouton" (HTML) templates, and nothing shows without
// one. The golden files under testdata/email hold every kind as it reads
// (go test ./templates -update rewrites them): a change to a template
// shows in their diff.
//
// The kinds (workflow.MailAccepte, …) are declared once, in workflow
// (workflow.MailKinds); Load fails unless every kind has its templates and
// every template a kind. They are a contract with the jobs that send the
// e-mails: they are stored with each delivery and must never change.
package templates
