#!/usr/bin/env bash
# Prints the development WEBHOOK_SECRET_KEY of `make run`: the key in
# var/webhook-secret.key, made on first use (32 random bytes in base64, the
# file readable by its owner only). It seals the webhooks' secrets in the
# database; production sets its own (openssl rand -base64 32), kept apart
# from the database's backups.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
key=var/webhook-secret.key
if [[ ! -s $key ]]; then
	mkdir -p var
	(umask 077 && head -c 32 /dev/urandom | base64 >"$key.tmp" && mv "$key.tmp" "$key")
	echo "dev-webhook-key: made $key" >&2
fi
cat "$key"
