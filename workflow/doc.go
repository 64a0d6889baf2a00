// Package workflow is aptflow's domain: the dossier of the procedure
// « Autorisation provisoire de travail (APT) pour les étudiants », its
// statuses and the rules that move it, the instructeurs who follow it and the
// activity they hear about.
//
// Read it in this order:
//
//   - machine.go: the pure state machine. Apply(dossier state, event, input)
//     returns the new state and the effects the transition causes (e-mails,
//     the attestation), or a typed *Error. No database, clock or River.
//   - errors.go: the one error type, with a Code that the HTTP layer maps to
//     a status in one place.
//   - demandeur.go: the APT request and its validation (one FieldError per bad
//     field).
//   - date.go: Date, a calendar date (a birth date, the job's first and last
//     days) that no time zone can move, and Paris, the procedure's zone.
//   - service.go: the Service. Each method opens (or joins) one Postgres
//     transaction, locks the dossier row, applies the machine, writes the
//     history row and the delivery log, and hands the background work to an
//     Enqueuer inside that same transaction. A rolled-back transition leaves
//     no job; a committed one is never without its jobs.
//   - kinds.go: every kind of e-mail and of activity, declared once
//     (MailKinds, ActivityKinds); the templates are checked against them.
//     bulk.go says which e-mails are bulk mail (IsBulkMail), which waits
//     behind the others on a queue of its own.
//   - tabs.go: the instructeurs' tabs, each page one range per procedure of
//     an index that holds exactly the tab's rows, so that it costs the rows
//     it returns, whatever the size of the other procedures.
//   - store.go: the SQL the methods share.
//   - delivery.go, attestation.go: what the jobs record (an e-mail sent,
//     failed or cancelled; the rendered PDF). Workers write the domain's
//     tables only through the Service.
//   - webhook.go: the webhooks to upstream apps. Each change that an
//     upstream app may hear of writes its event, and one delivery per
//     subscription of its procedure that wants it, in the change's own
//     transaction (emitTx, or a statement of the transition's batch), and
//     enqueues their DeliverWebhook tasks there too; the subscriptions'
//     secrets are sealed by a SecretBox, their URLs checked by a
//     TargetChecker, both given by the caller (jobs/webhook).
//   - stale.go, notify.go: the writes of the background work that the jobs
//     package orchestrates: the stale scan's flags, history rows, reminders
//     and bookkeeping; the followers' notification and digest cursors. Each
//     takes the job's transaction and returns the deliveries it wrote, which
//     the job enqueues and completes with in that transaction.
//   - lifecycle.go, purge.go: the data lifecycle (RGPD, docs/DATA.md): the
//     extension of a dossier's conservation, its tombstone once purged
//     (EDossierSupprime), and the purge's batches (notices, erasure,
//     forgotten idempotency keys). The expiry itself is one SQL function,
//     kept on every write by a trigger (migrations/00006), never earlier
//     than RETENTION_NOTICE after the applicant's notice (00011).
//
// The package never imports River's workers or the jobs package: it declares
// what it needs (Enqueuer, Task) and the jobs package implements it.
package workflow
