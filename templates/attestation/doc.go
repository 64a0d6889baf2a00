// Package attestation renders the « Autorisation provisoire de travail »
// (APT) that aptflow mails to a student when an instructeur accepts the
// dossier: a one-page A4 PDF, in French, that the student shows to an
// employer, who checks it online through the QR code printed on it.
//
// Build one [Renderer] at start with [NewRenderer] and share it: it is safe
// for concurrent use. NewRenderer parses the embedded fonts and renders a
// sample, so a broken asset stops the process at start, not at the first
// accepted dossier. [Renderer.Render] turns a [Data] into PDF bytes, which
// a [Signer] (LoadSigner: a PEM certificate chain and key) signs: a PDF
// signature, SHA-256, with the chain embedded, which poppler's pdfsig and
// PDF readers check.
//
// # What is on the page
//
// The République française header and the issuing service; the title, the
// holder's name and the legal basis (code du travail, L. 5221-2, L. 5221-5,
// R. 5221-1 et suivants); sections Titulaire, Titre de séjour, Employeur
// (SIRET grouped « 732 829 320 00074 »), Emploi (weekly hours « 17,5 h »,
// period) and Décision (dossier number, date, motivation); the signatory
// block (the procedure's signataire, its capacity and name, never an
// agent's e-mail; « Signé électroniquement » when Data.Signed); a
// verification block with the QR code of Data.VerificationURL, the URL and
// the code in clear, in groups of four; a footer that is never cut (Render
// fails instead). The document's metadata: title, subject, author (the
// service), keywords and language fr-FR. Dates are French
// (« 1er mars 2025 »): the calendar dates (workflow.Date) as they are, the
// decision's instant in the Europe/Paris zone (workflow.Paris).
//
// # One page, always
//
// Automatic page breaks are off and the layout is budgeted. The type of
// the body is set at the largest scale (100 % down to 60 %) at which every
// field fits whole: at the API's maximum lengths (names 100 characters,
// texts 200, addresses 500) nothing is cut. Only values beyond those bounds
// are capped in lines, the longest field giving up a line first, and cut
// with « … ». The motivation takes what remains above the signatory block,
// in the largest size from 10 pt down to 7 pt that fits, cut with « … » at
// 7 pt. Render fails rather than draw outside the page, which the tests
// check with every field at its maximum, 200-character fields and a
// 5000-character motivation.
//
// # Fonts and scripts
//
// The text is set in DejaVu Sans Condensed, with its real bold face
// (github.com/go-fonts/dejavu, under the DejaVu fonts' licence), each
// embedded as a UTF-8 TrueType subset: every Latin script with its
// diacritics — French, Polish (ł, ż), Turkish (ş, ğ, ı), Czech (ř, ů),
// Vietnamese (ễ, ị, ư, stacked marks and all) — Greek and Cyrillic; its
// « - » is a hyphen. The condensed width keeps long names and addresses on
// fewer lines.
//
// Characters the fonts lack (Chinese, Devanagari…) do not break the
// document: they print as empty boxes, while the PDF's text layer keeps them
// (copy and paste, search and pdftotext give the exact name). Right-to-left
// scripts (Arabic, Hebrew) count as lacking: gofpdf would print their
// letters unjoined and in reverse. A holder's name with such characters
// comes with a note that the verification page shows it in full.
// Characters outside the Basic Multilingual Plane (emoji) become U+FFFD and
// control characters are dropped: gofpdf cannot encode the former and would
// print the latter as boxes.
//
// The Renderer parses the fonts once (gofpdf.ParseUTF8Font, one of our patches
// in third_party/gofpdf) and its documents share them, at once if need be:
// subsetting reads the font's bytes and never writes to them, so no document
// needs a copy of its own.
//
// # Deterministic output
//
// The same Data gives the same bytes: catalogs are sorted, the PDF's
// creation and modification dates are Data.DecidedAt, and nothing is random.
// A job retried after a crash therefore renders the very PDF whose SHA-256
// the verification page announces (the signature, which carries its
// signing time, is added after; a retried job keeps the first signed file
// stored). The golden test pins the unsigned bytes; it also pins gofpdf,
// the fonts and the Go release's compress/flate, so any of those upgrades
// calls for a look at the page and `go test -run TestGolden -update`.
package attestation
