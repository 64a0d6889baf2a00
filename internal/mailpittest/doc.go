// Package mailpittest runs a real SMTP server, mailpit, for a test, and reads
// what it received through mailpit's HTTP API.
//
// Start launches a mailpit process of its own on free loopback ports, with its
// database in the test's temporary directory, and kills it when the test
// ends: tests running in parallel never see each other's mail. The SMTP
// server accepts any credentials (or none) and keeps every message; its chaos
// feature is enabled, so a test can make it answer MAIL FROM, RCPT TO or AUTH
// with an error of its choice (SetChaos).
//
// The binary is $MAILPIT, else mailpit on $PATH, else $GOBIN or $GOPATH/bin.
// `make test` installs it if missing (scripts/ensure-mailpit.sh); by hand:
//
//	go install github.com/axllent/mailpit@v1.33.1
//
// A test without mailpit fails, saying how to install it: it never skips.
//
// Launch is Start for a program rather than a test (the bench, the fault
// suite): the same mailpit, on the same terms, stopped by its caller.
//
// Search queries use mailpit's syntax: words, "quoted phrases", and filters
// such as to:, from:, subject:, message-id:, has:attachment, with - to negate
// (https://mailpit.axllent.org/docs/usage/search-filters/).
package mailpittest
