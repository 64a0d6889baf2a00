#!/usr/bin/env bash
# Creates database NAME if it does not exist, and prints its URL on stdout.
#
#   scripts/ensure-db.sh NAME [ADMIN_URL]
#
# ADMIN_URL (a postgres:// URL of a role that may create databases) defaults
# to what scripts/ensure-postgres.sh finds or starts. `make run` uses it for
# the database aptflow.
set -euo pipefail

log() { printf 'ensure-db: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

name=${1:-}
[[ $name =~ ^[a-z_][a-z0-9_]*$ ]] || die "usage: $0 NAME [ADMIN_URL], NAME in [a-z0-9_]"
admin=${2:-$("$(dirname "${BASH_SOURCE[0]}")/ensure-postgres.sh")}
[[ $admin == postgres://* || $admin == postgresql://* ]] || die "ADMIN_URL must be a postgres:// URL"
command -v psql >/dev/null || die "psql is needed (Debian: apt-get install postgresql-client)"

# One statement, so running it twice is harmless; template0 and UTF8 so the
# database is UTF8 whatever the cluster's default.
psql -X -q -v ON_ERROR_STOP=1 -v name="$name" -d "$admin" >&2 <<'SQL'
SELECT format('CREATE DATABASE %I TEMPLATE template0 ENCODING %L', :'name', 'UTF8')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL

# The admin URL with its path (the database) replaced, query string kept.
base=${admin%%\?*}
query=${admin#"$base"}
scheme=${base%%://*}
authority=${base#*://}
authority=${authority%%/*}
printf '%s://%s/%s%s\n' "$scheme" "$authority" "$name" "$query"
