#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the ledger test suite.
#
#   eval "$(.ci/postgres.sh)"     # then pytest picks up TRANSACTIVE_TEST_POSTGRES_URL
#
# Works as root on a fresh Debian machine with no running services (installs the
# `postgresql` package when no server binaries are found) and as any user that can
# run initdb itself. Only the export line goes to stdout; progress goes to stderr.
# Exits non-zero on any failure. PGPORT picks the port (default: the first free one
# from 54329).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

PGBIN="$(find_bin)"
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    PGBIN="$(find_bin)"
fi
[ -x "$PGBIN/initdb" ] || { log "no initdb found under /usr/lib/postgresql"; exit 1; }

# PGPORT, or the first free port from 54329 (a server left over from an earlier run
# must not make this one fail).
PORT="${PGPORT:-}"
if [ -z "$PORT" ]; then
    for candidate in $(seq 54329 54399); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            PORT="$candidate"
            break
        fi
    done
fi
[ -n "$PORT" ] || { log "no free port in 54329-54399"; exit 1; }
DATA="$(mktemp -d /tmp/transactive-pg.XXXXXX)"

# PostgreSQL refuses to run as root: run the server as the `postgres` user then.
if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DATA" postgres
    chown postgres "$DATA"
    as_pg() { su postgres -s /bin/sh -c "$*"; }
else
    as_pg() { sh -c "$*"; }
fi

log "initdb in $DATA ($PGBIN)"
as_pg "'$PGBIN/initdb' -D '$DATA/db' -U postgres -A trust --no-sync -E UTF8" >&2
log "starting the server on 127.0.0.1:$PORT"
as_pg "'$PGBIN/pg_ctl' -D '$DATA/db' -l '$DATA/server.log' -w -t 60 \
    -o \"-h 127.0.0.1 -p $PORT -k '$DATA'\" start" >&2 \
    || { cat "$DATA/server.log" >&2; exit 1; }
as_pg "'$PGBIN/createdb' -h 127.0.0.1 -p $PORT -U postgres transactive_test" >&2
as_pg "'$PGBIN/pg_isready' -h 127.0.0.1 -p $PORT -U postgres" >&2

echo "export TRANSACTIVE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/transactive_test"
