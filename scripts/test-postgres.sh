#!/usr/bin/env bash
# The PostgreSQL server the tests use: start it (or reuse the one already running) and
# write its URL where tests/postgres.py reads it. `make test` runs this (target `postgres`).
#
#   scripts/test-postgres.sh          start or reuse; print the URL
#   scripts/test-postgres.sh stop     stop the server (its data stays for the next start)
#
# Where PostgreSQL is missing and this user is root with apt-get (as on CI), Debian's
# `postgresql` package is installed. The server refuses to run as root, so a root caller
# runs it as the `postgres` user that package creates; anyone else runs it as themselves.
# The cluster lives in $TRIMKIT_PG_DIR (default: $TMPDIR/trimkit-postgres-UID), listens on
# 127.0.0.1 at a free port and on a socket in that folder, and holds a role and database
# `trimkit` (password `trimkit`; it may create databases, so each test gets a fresh one).
# It is a throwaway test server: fsync is off.
set -euo pipefail

dir=${TRIMKIT_PG_DIR:-${TMPDIR:-/tmp}/trimkit-postgres-$(id -u)}
data=$dir/data
role=trimkit
database=trimkit
password=trimkit

say() { echo "test-postgres: $*" >&2; }

find_bindir() {
  local candidate
  candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then echo "$candidate"; return; fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

bindir=$(find_bindir)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's postgresql for the tests"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir=$(find_bindir)
  fi
  if [ -z "$bindir" ]; then
    say "warning: PostgreSQL is missing and this user cannot apt-get it; the PostgreSQL tests will skip (and fail under CI=true)"
    exit 0
  fi
fi

if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id "$owner" >/dev/null 2>&1 || { say "error: running as root, but there is no 'postgres' user to run the server as"; exit 1; }
  as_owner() { runuser -u "$owner" -- "$@"; }
else
  owner=$(id -un)
  as_owner() { "$@"; }
fi

mkdir -p "$dir"
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown "$owner" "$dir"

pg_ctl() { as_owner "$bindir/pg_ctl" -D "$data" "$@"; }

if [ "${1:-start}" = stop ]; then
  if [ -f "$data/postmaster.pid" ]; then pg_ctl -m fast -w stop >/dev/null && say "stopped"; fi
  exit 0
fi

exec 9>"$dir/lock"  # two `make test` at once: the second waits, then reuses the server
# (the server is started with fd 9 closed, or it would hold the lock for its whole life)
flock 9

running() { pg_ctl status >/dev/null 2>&1; }

if running && [ -s "$dir/url" ] && "$bindir/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")"; then
  cat "$dir/url"
  exit 0
fi

if [ ! -s "$data/PG_VERSION" ]; then
  rm -rf "$data"
  as_owner "$bindir/initdb" -D "$data" --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 \
    --locale=C.UTF-8 >/dev/null
  cat >>"$data/postgresql.conf" <<EOF
# trimkit test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
fi

if ! running; then
  port=
  for candidate in $(seq 55432 55532); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
  done
  [ -n "$port" ] || { say "error: no free port in 55432-55532"; exit 1; }
  pg_ctl -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null 9>&- \
    || { say "error: the server did not start; see $dir/server.log"; tail -n 20 "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
fi
port=$(cat "$dir/port")

as_owner "$bindir/psql" -q -h "$dir" -p "$port" -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$role', '$password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$database', '$role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$database') \gexec
EOF

url="postgresql://$role:$password@127.0.0.1:$port/$database"
echo "$url" >"$dir/url.tmp" && chmod 644 "$dir/url.tmp" && mv "$dir/url.tmp" "$dir/url"
echo "$url"
