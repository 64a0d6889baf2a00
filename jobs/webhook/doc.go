// Package webhook is the wire side of aptflow's webhooks to upstream apps,
// which follow the Standard Webhooks specification (standardwebhooks.com):
//
//   - [Sign] writes the webhook-signature header: "v1," and the base64
//     HMAC-SHA256 of "id.timestamp.body" keyed by the secret's decoded
//     bytes, once per secret, separated by spaces, so that a receiver
//     still verifies with the old secret while a rotation settles.
//   - [Keyring] seals the subscriptions' secrets at rest with AES-256-GCM
//     under WEBHOOK_SECRET_KEY: a dump of the database alone cannot sign.
//   - [Policy] says which targets aptflow may call: https:// to public
//     addresses, plus http:// or https:// to WEBHOOK_ALLOWED_NETWORKS. It
//     checks a URL when a subscription is created (every address its host
//     resolves to) and, through [Sender], every connection at the moment it
//     is made (the address actually dialled, after resolution), so that a
//     name that resolves elsewhere later (DNS rebinding) reaches nothing it
//     must not.
//   - [Sender] posts one delivery: no proxy from the environment (it would
//     be the address dialled), no redirect followed (a 3xx is an answer
//     like any other non-2xx), a timeout on the whole exchange, and at most
//     a few kilobytes of the answer read.
//
// The workflow package decides what is sent and records what happened; the
// jobs package runs one delivery per River job. This package holds no state
// of its own beyond its configuration, and logs nothing.
package webhook
