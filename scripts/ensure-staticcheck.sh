#!/usr/bin/env bash
# Makes sure the staticcheck binary (make lint) is installed, at the version
# the project pins and built by the Go release in use, and prints its path
# on stdout. It lives in go install's directory ($GOBIN or $GOPATH/bin),
# where it is installed, or reinstalled, when it is missing or differs.
set -euo pipefail

# Pinned: another release of staticcheck reports other findings.
version=v0.8.2

log() { printf 'ensure-staticcheck: %s\n' "$*" >&2; }

gobin=$(go env GOBIN)
if [[ -z $gobin ]]; then
	gopath=$(go env GOPATH)
	gobin=${gopath%%:*}/bin
fi
bin=$gobin/staticcheck

# `go version -m` says which Go built the binary and which module version it
# is. A staticcheck built by an older Go cannot load the code of a newer one,
# so a Go upgrade reinstalls it too.
current() {
	local info
	info=$(go version -m "$bin" 2>/dev/null) || return 1
	[[ $(head -n 1 <<<"$info") == "$bin: $(go env GOVERSION)" ]] &&
		grep -qE "^[[:space:]]+mod[[:space:]]+honnef\.co/go/tools[[:space:]]+$version([[:space:]]|$)" <<<"$info"
}

if ! current; then
	log "installing honnef.co/go/tools/cmd/staticcheck@$version into $gobin"
	GOBIN=$gobin go install "honnef.co/go/tools/cmd/staticcheck@$version" >&2
fi
echo "$bin"
