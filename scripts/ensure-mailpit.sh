#!/usr/bin/env bash
# Makes sure the mailpit binary (a real SMTP server for the tests) is
# installed, at the version the project pins, and prints its path on stdout.
# Looked for as internal/mailpittest does: $MAILPIT, $PATH, then go install's
# directory ($GOBIN or $GOPATH/bin), where it is installed if missing.
set -euo pipefail

# Keep in step with internal/mailpittest.Version.
version=v1.33.1

log() { printf 'ensure-mailpit: %s\n' "$*" >&2; }

if [[ -n ${MAILPIT:-} ]]; then
	[[ -x $MAILPIT ]] || { log "MAILPIT=$MAILPIT is not an executable"; exit 1; }
	echo "$MAILPIT"
	exit 0
fi
if command -v mailpit >/dev/null; then
	command -v mailpit
	exit 0
fi
gobin=$(go env GOBIN)
if [[ -z $gobin ]]; then
	gopath=$(go env GOPATH)
	gobin=${gopath%%:*}/bin
fi
if [[ ! -x $gobin/mailpit ]]; then
	log "installing github.com/axllent/mailpit@$version into $gobin"
	go install "github.com/axllent/mailpit@$version" >&2
fi
echo "$gobin/mailpit"
