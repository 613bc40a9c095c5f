#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and print its URL.
#
#   scripts/start_test_postgres.sh DATA_DIR PORT    # initdb (once) + start; prints postgresql://...
#   scripts/start_test_postgres.sh --stop DATA_DIR  # stop it (then rm -rf DATA_DIR)
#
# Uses the newest /usr/lib/postgresql/*/bin (Debian's layout), else initdb on the PATH. The server
# listens on 127.0.0.1:PORT (and a socket in DATA_DIR), trusts local connections as user postgres
# and runs without fsync: for tests only. initdb refuses root, so as root the cluster belongs to
# the postgres user (DATA_DIR's parent folders must let it in: /tmp/... is fine).
# Export the printed URL as FACEATTR_TEST_POSTGRES for tests/retrieval/test_postgres.py.
set -euo pipefail

usage() { echo "usage: $0 DATA_DIR PORT | $0 --stop DATA_DIR" >&2; exit 2; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -z "$dir" ]] && command -v initdb >/dev/null; then dir=$(dirname "$(command -v initdb)"); fi
    [[ -n "$dir" && -x "$dir/initdb" ]] || { echo "error: no PostgreSQL server binaries found" >&2; exit 1; }
    echo "$dir"
}

as_owner() {  # run a command as the cluster's owner: postgres when we are root
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

[[ $# -ge 2 ]] || usage
BIN=$(bindir)

if [[ "$1" == "--stop" ]]; then
    DATA_DIR=$(realpath -m "$2")
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR/pgdata" -m immediate -w stop >/dev/null
    exit 0
fi

DATA_DIR=$(realpath -m "$1")
PORT=$2
[[ "$PORT" =~ ^[0-9]+$ ]] || usage
mkdir -p "$DATA_DIR"
if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$DATA_DIR"
    runuser -u postgres -- test -w "$DATA_DIR" || {
        echo "error: user postgres cannot write $DATA_DIR (a parent folder shuts it out)" >&2
        exit 1
    }
fi
if [[ ! -f "$DATA_DIR/pgdata/PG_VERSION" ]]; then
    as_owner "$BIN/initdb" -D "$DATA_DIR/pgdata" -A trust -U postgres -E UTF8 --no-sync \
        >"$DATA_DIR/initdb.log" 2>&1 || { cat "$DATA_DIR/initdb.log" >&2; exit 1; }
fi
if ! as_owner "$BIN/pg_ctl" -D "$DATA_DIR/pgdata" status >/dev/null 2>&1; then
    OPTIONS="-p $PORT -k $DATA_DIR -c listen_addresses=127.0.0.1"
    OPTIONS+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR/pgdata" -l "$DATA_DIR/server.log" -o "$OPTIONS" -w start \
        >/dev/null || { cat "$DATA_DIR/server.log" >&2; exit 1; }
fi
echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
