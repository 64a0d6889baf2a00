#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for development and tests: its own data
# directory under var/pg, 127.0.0.1:5433, trust auth, no fsync. Never for data
# you want to keep; `make clean` stops it and deletes it.
#
#   scripts/local-postgres.sh start      initdb the first time, start; prints the admin URL
#   scripts/local-postgres.sh stop       stop it if it runs
#   scripts/local-postgres.sh status     exit 0 if it runs
#   scripts/local-postgres.sh available  exit 0 if PostgreSQL's server binaries are installed
#
# Environment: APTFLOW_PG_PORT (default 5433), APTFLOW_PG_DIR (default var/pg).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${APTFLOW_PG_PORT:-5433}
dir=${APTFLOW_PG_DIR:-$root/var/pg}

log() { printf 'local-postgres: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# bindir prints the directory of initdb and pg_ctl: $PATH's (Homebrew and
# the like), else the newest of Debian's /usr/lib/postgresql/*/bin.
bindir() {
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		dirname "$(command -v initdb)"
		return
	fi
	local candidates
	shopt -s nullglob
	candidates=(/usr/lib/postgresql/*/bin/initdb)
	((${#candidates[@]})) || return 1
	dirname "$(printf '%s\n' "${candidates[@]}" | sort -V | tail -n1)"
}

# as_pg runs a server command: initdb and postgres refuse to run as root, so
# root runs them as the postgres user (which Debian's packages create).
as_pg() {
	if [[ $EUID -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# As root the server runs as the postgres user, which must reach $dir: if the
# checkout sits where it cannot (under /root, say), the cluster lives in a
# directory of its own under /tmp instead, named after the checkout.
if [[ $EUID -eq 0 && -z ${APTFLOW_PG_DIR:-} ]] && ! runuser -u postgres -- test -x "$root" 2>/dev/null; then
	dir=${TMPDIR:-/tmp}/aptflow-pg-$(printf '%s' "$root" | cksum | cut -d' ' -f1)
fi

# prepare_dir creates $dir, owned by whoever runs the server.
prepare_dir() {
	mkdir -p "$dir"
	if [[ $EUID -eq 0 ]]; then
		chown postgres:postgres "$dir"
	fi
}

running() {
	local bin
	bin=$(bindir) || return 1
	[[ -f $dir/data/PG_VERSION ]] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

start() {
	local bin
	bin=$(bindir) || die "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
	prepare_dir
	if [[ ! -f $dir/data/PG_VERSION ]]; then
		log "creating a cluster in $dir/data with $bin/initdb"
		# UTF8 whatever the machine's locale: names like « Élodie » must survive.
		as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >&2
	fi
	if running; then
		log "already running on port $port ($dir/data)"
	else
		log "starting on 127.0.0.1:$port, log in $dir/postgres.log"
		# TCP only (no socket path to outgrow), and durability traded for
		# speed: tests create and drop many databases.
		as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start -o \
			"-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2 ||
			die "could not start it; see $dir/postgres.log (port $port taken? set APTFLOW_PG_PORT)"
	fi
	printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$port"
}

stop() {
	local bin
	bin=$(bindir) || return 0
	if running; then
		log "stopping the cluster in $dir/data"
		as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
	fi
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) running ;;
available) bindir >/dev/null ;;
*) die "usage: $0 start|stop|status|available" ;;
esac
