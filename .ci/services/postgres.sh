#!/usr/bin/env bash
# A private, throwaway PostgreSQL 15 cluster for the tests:
#   .ci/services/postgres.sh run CMD...          starts one, runs CMD with TEST_DATABASE_URL set, stops it
#   eval "$(.ci/services/postgres.sh start)"     starts one; exports TEST_DATABASE_URL and PG_TEST_DIR
#   .ci/services/postgres.sh stop "$PG_TEST_DIR" stops it and removes its directory
# As root the cluster runs as user `postgres` (initdb refuses root), listens on 127.0.0.1 only, and keeps
# PostgreSQL's durable defaults (fsync and synchronous_commit on): durability tests and
# benchmarks run on it.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

start() {
  local dir port
  dir=$(mktemp -d /tmp/dropfold-pg.XXXXXX)
  chmod 700 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  port=${PG_PORT:-$(free_port)} || { rm -rf "$dir"; exit 1; }
  # --no-sync only skips initdb's final flush of the fresh files (a throwaway cluster); the
  # server itself runs with fsync on. pg_stat_statements counts statements (round trips) per query.
  as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_preload_libraries=pg_stat_statements" -w start >&2 ||
    { cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1; }
  echo "export PG_TEST_DIR=$dir"
  echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir=${1:?the cluster directory (PG_TEST_DIR)}
  [ -d "$dir/data" ] && as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
}

run() {
  eval "$(start)"
  trap 'stop "$PG_TEST_DIR"' EXIT
  "$@"
}

case "${1:-}" in
  start) start ;;
  run) shift; run "$@" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 run CMD... | start | stop DIR" >&2; exit 2 ;;
esac
