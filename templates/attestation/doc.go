// Package attestation renders the « Autorisation provisoire de travail »
// (APT) that aptflow mails to a student when an instructeur accepts the
// dossier: a one-page A4 PDF, in French, that the student shows to an
// employer, who checks it online through the QR code printed on it.
//
// Build one [Renderer] at start with [NewRenderer] and share it: it is safe
// for concurrent use. NewRenderer parses the embedded font and renders a
// sample, so a broken asset stops the process at start, not at the first
// accepted dossier. [Renderer.Render] turns a [Data] into PDF bytes.
//
// # What is on the page
//
// The République française header and the issuing service; the title, the
// holder's name and the legal basis (code du travail, L. 5221-2, L. 5221-5,
// R. 5221-1 et suivants); sections Titulaire, Titre de séjour, Employeur
// (SIRET grouped « 732 829 320 00074 »), Emploi (weekly hours « 17,5 h »,
// period) and Décision (dossier number, date, instructeur, motivation); a
// verification block with the QR code of Data.VerificationURL, the URL and
// the code in clear; a footer. Dates are French (« 1er mars 2025 »): the
// calendar dates (workflow.Date) as they are, the decision's instant in the
// Europe/Paris zone (workflow.Paris).
//
// # One page, always
//
// Automatic page breaks are off and the layout is budgeted: every field is
// wrapped by the package itself and capped in lines, cut with « … » when it
// goes on. When long fields compete for room, the longest gives up a line
// first; the motivation takes what remains above the verification block, in
// the largest size from 10 pt down to 7 pt that fits, cut with « … » at 7 pt.
// Render fails rather than draw outside the page, which the tests check with
// 200-character fields and a 5000-character motivation.
//
// # Fonts and scripts
//
// The text is set in Go Regular (golang.org/x/image/font/gofont), embedded
// as a UTF-8 TrueType subset: Latin with its extensions (é, œ, ł, ş, ø),
// Greek and Cyrillic. Bold is drawn by stroking the regular outlines, because
// gofpdf parses, fingerprints and subsets each font of each document, and a
// second face costs about 40 % more time per attestation.
//
// Characters the font lacks (Chinese, Arabic…) do not break the document:
// they print as empty boxes, while the PDF's text layer keeps them (copy and
// paste, search and pdftotext give the exact name). A holder's name with such
// characters comes with a note that the verification page shows it in full.
// Characters outside the Basic Multilingual Plane (emoji) become U+FFFD and
// control characters are dropped: gofpdf cannot encode the former and would
// print the latter as boxes.
//
// The Renderer parses the font once (gofpdf.ParseUTF8Font, one of our patches
// in third_party/gofpdf) and its documents share it, at once if need be:
// subsetting reads the font's bytes and never writes to them, so no document
// needs a copy of its own.
//
// # Deterministic output
//
// The same Data gives the same bytes: catalogs are sorted, the PDF's
// creation and modification dates are Data.DecidedAt, and nothing is random.
// A job retried after a crash therefore renders the very PDF whose SHA-256
// the verification page announces. The golden test pins the bytes; it also
// pins gofpdf, the Go font and the Go release's compress/flate, so any of
// those upgrades calls for a look at the page and `go test -run TestGolden
// -update`.
package attestation
