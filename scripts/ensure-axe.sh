#!/usr/bin/env bash
# Makes sure axe-core (the accessibility checker the browser test of the
# verification page runs in Chromium) is installed, at the version the
# project pins, and prints the path of its axe.min.js on stdout. It is
# installed with npm under var/npm (ignored by git), once.
set -euo pipefail

# Keep in step with the version the README and the browser test name.
version=4.14.1

log() { printf 'ensure-axe: %s\n' "$*" >&2; }

if [[ -n ${AXE_CORE_JS:-} ]]; then
	[[ -r $AXE_CORE_JS ]] || { log "AXE_CORE_JS=$AXE_CORE_JS is not readable"; exit 1; }
	echo "$AXE_CORE_JS"
	exit 0
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$root/var/npm
js=$dir/node_modules/axe-core/axe.min.js
if [[ ! -r $js ]] || ! grep -q "\"version\": \"$version\"" "$dir/node_modules/axe-core/package.json"; then
	command -v npm >/dev/null || { log "npm is needed: apt-get install npm"; exit 1; }
	log "installing axe-core@$version into $dir"
	mkdir -p "$dir"
	npm install --prefix "$dir" --no-save --no-audit --no-fund --silent "axe-core@$version" >&2
fi
echo "$js"
