// Package mailer sends the e-mails that aptflow renders: over SMTP in
// production, or as .eml files in a directory when no SMTP server is
// configured (development, demos).
//
// [New] picks the implementation from the configuration (SMTP_URL, MAIL_DIR).
// Both build the message with github.com/wneessen/go-mail, so a .eml file
// holds exactly the bytes an SMTP server would receive: multipart/alternative
// text and HTML, attachments in multipart/mixed, UTF-8 headers encoded, the
// caller's Message-ID and Date.
//
// A message is rendered once, to the bytes that go on the wire, and, with a
// [DKIM] signer (DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY), signed as
// those bytes: the SMTP mailer sends them as they are, over its own mail
// transaction, and the file mailer writes them. Rendering again would draw
// new MIME boundaries and break the signature. The header fields that hold
// text (Subject, the display names of From, To and Reply-To) are written by
// the mailer, as RFC 2047 encoded-words folded so that the value starts on
// the field's own line.
//
// A message is checked before anything is sent: addresses must parse and
// contain no line breaks, extra header names must be plain field names and
// cannot replace the ones the mailer sets. A line break in a subject or a
// header value is turned into a space. No caller can inject a header.
//
// Failures are returned as *[SendError], which says whether sending the same
// message again may work. The rule the delivery jobs rely on:
//
//   - an SMTP 5xx reply to this message (MAIL FROM, RCPT TO, end of DATA) is
//     permanent: retrying would get the same answer;
//   - a 4xx reply, a refused, dropped or timed-out connection, an error of
//     the relay itself (greeting, STARTTLS, authentication, even with a 5xx),
//     a cancelled context are temporary: the message is fine, the path is not;
//   - a message the mailer refuses to build (invalid address, Message-ID or
//     header) is permanent.
//
// The SMTP mailer reuses its connections: up to [DefaultMaxIdle] stay open
// between messages for 30 seconds at most, and one carries at most 100
// messages. A connection that failed in any way is closed, never reused. A
// reused connection that the server dropped while it was idle fails at MAIL
// FROM, before any of the message is sent: that message goes again over a
// new connection, at once, and the caller sees no error. Close the mailer
// ([SMTPMailer.Close]) to say QUIT on the idle connections.
//
// Retries are safe because the caller passes a deterministic Message-ID: the
// SMTP server sees the same message, and the file mailer overwrites the same
// file.
//
// The mailer logs nothing: errors go back to the caller, which knows which
// delivery they belong to. [SendError.Reply] is the server's text and may
// quote the recipient's address.
package mailer
