// Package jobs is aptflow's background work: River job args and workers, the
// River client that runs them, and the Enqueuer that turns the workflow's
// tasks into jobs inside the caller's transaction.
//
// Every job carries ids, never copies of personal data, and every worker is
// safe to run twice:
//
//   - send_email (SendEmailArgs): sends one row of the delivery log. A row
//     already sent is skipped; the Message-ID is derived from the row id, so a
//     retry after a crash is recognisable as the same message. SMTP 4xx and
//     dropped connections retry with capped exponential backoff; 5xx cancels
//     the job and marks the delivery failed with the server's reply.
//   - render_attestation (RenderAttestationArgs): renders the attestation PDF
//     once, stores it, and in the same transaction completes the job and
//     enqueues the acceptance e-mail.
//   - notify_follower (NotifyFollowerArgs): one e-mail to one follower listing
//     the activity on a dossier since the last one; bursts coalesce.
//   - send_digests (SendDigestsArgs): on DIGEST_CRON (NewCronJob, unique per
//     run time, like scan_stale), one digest e-mail per
//     instructeur in daily mode listing the activity on their followed
//     dossiers since the last one; the per-follow cursor it shares with
//     notify_follower means no activity is told twice.
//   - scan_stale (ScanStaleArgs): the stale scan as of a cron run time
//     (STALE_SCAN_CRON, NewScanStalePeriodicJob): flags the dossiers en
//     construction left inactive past their procedure's delay, in short
//     batches with the applicants' reminders, then one e-mail per
//     instructeur; see ScanStale. Unique per run time; a rerun finishes
//     what a killed run left and never e-mails twice.
//   - purge (PurgeArgs): the RGPD purge as of a cron run time (PURGE_CRON,
//     NewPurgePeriodicJob): forgets the idempotency keys older than
//     IDEMPOTENCY_TTL, tells the applicants of the dossiers about to expire
//     or already expired (their send_email jobs enqueued with their
//     e-mails), and erases the personal data of the expired dossiers whose
//     applicant was told RETENTION_NOTICE ahead, leaving tombstones; see Purge
//     and docs/DATA.md. In short batches, idempotent: a rerun does what a
//     killed run left.
//   - deliver_webhook (DeliverWebhookArgs): posts one webhook delivery (one
//     event, one subscription), signed anew on each attempt with the same
//     webhook-id and body; retried on WebhookBackoff up to
//     WEBHOOK_MAX_ATTEMPTS; a 410 disables the subscription. At most
//     WebhookPerSubscription attempts run at once per subscription and
//     process: a receiver that hangs snoozes its other deliveries instead
//     of holding the queue's workers. The wire side (signature, SSRF
//     policy, sealed secrets) is the jobs/webhook package.
//
// Queues: QueueEmail, QueueEmailBulk, QueueAttestation, QueueNotification,
// QueueMaintenance, QueueWebhook. An e-mail's queue is decided by its kind:
// bulk mail (workflow.IsBulkMail: stale reminders, digests, retention
// notices) waits on QueueEmailBulk, with workers of its own, paced by
// SMTP_MAX_RATE (Config.BulkRate), so that it never holds back the e-mails
// people wait for on QueueEmail.
//
// Workers read from the database what they render, but write the domain's
// tables only through workflow.Service (Deps.Service), in the job's
// transaction where the job completes with its writes. E-mail kinds are
// workflow's (workflow.MailKinds).
package jobs
