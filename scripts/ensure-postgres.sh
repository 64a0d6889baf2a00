#!/usr/bin/env bash
# Finds or starts a PostgreSQL that aptflow's tests and `make run` can use,
# and prints its admin URL (a role that may create databases) on stdout; what
# it does goes to stderr. The first of these that works wins:
#
#   env            $TEST_DATABASE_URL, else $DATABASE_URL, if it answers
#   running        a server on 127.0.0.1:5432 that lets user postgres in
#                  (a developer machine's or CI's, with trust auth)
#   debian         Debian's cluster (/etc/postgresql/*/main), started if stopped
#                  (as root) and used if it lets user postgres in over TCP
#   local-cluster  a throwaway cluster under var/pg on 127.0.0.1:5433
#                  (scripts/local-postgres.sh), if the server binaries exist
#   install        as root with apt-get, when CI is set or APTFLOW_INSTALL=1:
#                  apt-get install postgresql, then debian or local-cluster
#
# APTFLOW_PG=NAME tries that way only, e.g. APTFLOW_PG=local-cluster to use
# (or test) the throwaway cluster even though a server runs on 5432.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
local_port=${APTFLOW_PG_PORT:-5433}

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }

# mask hides the password of a URL in logs.
mask() { sed -E 's#^([a-z]+://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

# usable says whether we can log in with URL and run a query (or, with
# pg_isready only, whether the server accepts connections).
usable() {
	if command -v psql >/dev/null; then
		PGCONNECT_TIMEOUT=3 psql -X -q -A -t -d "$1" -c 'SELECT 1' >/dev/null 2>&1
	else
		pg_isready -q -t 3 -d "$1" 2>/dev/null
	fi
}

can_check() { command -v psql >/dev/null || command -v pg_isready >/dev/null; }

url_on() { printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$1"; }

try_env() {
	local name url
	for name in TEST_DATABASE_URL DATABASE_URL; do
		url=${!name:-}
		[[ -n $url ]] || continue
		if ! can_check; then
			log "using \$$name ($(mask "$url")), unchecked: no psql or pg_isready here"
		elif usable "$url"; then
			log "using \$$name ($(mask "$url"))"
		else
			log "\$$name ($(mask "$url")) does not answer; trying other ways"
			continue
		fi
		echo "$url"
		return 0
	done
	return 1
}

try_running() {
	local url
	url=$(url_on 5432)
	usable "$url" || return 1
	log "using the server on 127.0.0.1:5432"
	echo "$url"
}

try_debian() {
	command -v pg_ctlcluster >/dev/null && command -v pg_lsclusters >/dev/null || return 1
	local versions version port status url
	shopt -s nullglob
	versions=(/etc/postgresql/*/main)
	shopt -u nullglob
	((${#versions[@]})) || return 1
	version=$(printf '%s\n' "${versions[@]}" | cut -d/ -f4 | sort -V | tail -n1)
	read -r _ _ port status _ < <(pg_lsclusters -h "$version" main)
	if [[ $status != online* ]]; then
		if [[ $EUID -ne 0 ]]; then
			log "Debian's cluster $version/main is stopped; as root: pg_ctlcluster $version main start"
			return 1
		fi
		log "starting Debian's cluster $version/main"
		# --skip-systemctl-redirect: containers and CI machines run no systemd.
		pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || return 1
	fi
	url=$(url_on "$port")
	if ! usable "$url"; then
		# Debian's default pg_hba.conf wants a password over TCP; rather than
		# edit a system cluster's auth, fall through to a throwaway one.
		log "Debian's cluster $version/main (port $port) does not let user postgres in without a password"
		return 1
	fi
	log "using Debian's cluster $version/main on port $port"
	echo "$url"
}

try_local_cluster() {
	"$root/scripts/local-postgres.sh" available || return 1
	if ! "$root/scripts/local-postgres.sh" status && usable "$(url_on "$local_port")"; then
		# Another checkout's throwaway cluster: as good as ours.
		log "using the throwaway cluster already on 127.0.0.1:$local_port"
		url_on "$local_port"
		return 0
	fi
	"$root/scripts/local-postgres.sh" start
}

try_install() {
	if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
		return 1
	fi
	if [[ -z ${CI:-} && ${APTFLOW_INSTALL:-} != 1 ]]; then
		log "not installing PostgreSQL: APTFLOW_INSTALL=1 (or CI) lets this script apt-get install it"
		return 1
	fi
	log "installing PostgreSQL with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	# C.UTF-8: the cluster Debian creates is UTF8 even where LANG is unset.
	LANG=C.UTF-8 apt-get install -y -qq postgresql >&2
	try_debian || try_local_cluster
}

fail() {
	cat >&2 <<EOF
ensure-postgres: no usable PostgreSQL found. Either:
  - install PostgreSQL (Debian: apt-get install postgresql, or run this as root
    with APTFLOW_INSTALL=1) and run this again;
  - or start one with Docker: docker compose up -d postgres
    and export DATABASE_URL=postgres://aptflow:aptflow@127.0.0.1:5432/aptflow?sslmode=disable
    (TEST_DATABASE_URL likewise for the tests).
EOF
	exit 1
}

case ${APTFLOW_PG:-} in
"") try_env || try_running || try_debian || try_local_cluster || try_install || fail ;;
env | running | debian | local-cluster | install) "try_${APTFLOW_PG//-/_}" || fail ;;
*)
	log "unknown APTFLOW_PG=$APTFLOW_PG (env, running, debian, local-cluster or install)"
	exit 2
	;;
esac
