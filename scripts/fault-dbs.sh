#!/usr/bin/env bash
# The fault suite's PRIVATE PostgreSQL cluster and Redis, so its database restarts never disturb the shared instances
# (5432/6379) other tests use:
#   PostgreSQL 15 cluster "concordfaults" on 127.0.0.1:5439 (user postgres, password concord, database concord_test)
#   Redis on 127.0.0.1:6389, AOF with appendfsync everysec, no RDB snapshots, data in /tmp/concord-faults-redis-6389
#
#   scripts/fault-dbs.sh up                  create if needed, start both, print CONCORD_FAULTS_PG=… and CONCORD_FAULTS_REDIS=…
#   scripts/fault-dbs.sh down                stop both (the cluster and the AOF stay for the next run)
#   scripts/fault-dbs.sh drop                stop both and delete the cluster and the Redis directory
#   scripts/fault-dbs.sh pg-restart-fast     pg_ctlcluster restart -m fast (clean: connections terminated, checkpoint)
#   scripts/fault-dbs.sh pg-restart-immediate  pg_ctlcluster restart -m immediate (a crash: no checkpoint, WAL replay)
#   scripts/fault-dbs.sh redis-shutdown      SHUTDOWN (AOF flushed and fsynced), then start again
#   scripts/fault-dbs.sh redis-shutdown-nosave  SHUTDOWN NOSAVE (no RDB; the AOF is still flushed), then start again
#   scripts/fault-dbs.sh redis-sigkill       SIGKILL redis-server (no flush, no fsync), then start again (replays the AOF)
#
# Needs root (pg_ctlcluster as root, su postgres) and the Debian postgresql-15 and redis-server packages; as root it
# installs them when missing. Exit code 3 (with the reason on stderr) means "cannot run here": callers skip.
set -euo pipefail
PG_VERSION=15
PG_NAME=concordfaults
PG_PORT=${CONCORD_FAULTS_PG_PORT:-5439}
REDIS_PORT=${CONCORD_FAULTS_REDIS_PORT:-6389}
REDIS_DIR=/tmp/concord-faults-redis-$REDIS_PORT
PG_CONN="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Password=concord;Database=concord_test;Timeout=5;Command Timeout=10"

skip() { echo "fault-dbs: $*" >&2; exit 3; }

[ "$(id -u)" = 0 ] || skip "needs root (pg_ctlcluster, su postgres, redis-server on a private port)"
if ! command -v pg_createcluster >/dev/null || [ ! -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ] || ! command -v redis-server >/dev/null; then
  command -v apt-get >/dev/null || skip "pg_createcluster/postgresql-$PG_VERSION/redis-server missing and no apt-get"
  echo "fault-dbs: installing postgresql-$PG_VERSION and redis-server" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-$PG_VERSION redis-server; } >/dev/null 2>&1 \
    || skip "could not install postgresql-$PG_VERSION and redis-server"
fi

psql_p() { su postgres -c "psql -p $PG_PORT -qtAc \"$1\""; }

pg_wait() {
  for _ in $(seq 1 100); do
    if su postgres -c "pg_isready -q -h 127.0.0.1 -p $PG_PORT"; then return 0; fi
    sleep 0.1
  done
  echo "fault-dbs: PostgreSQL on $PG_PORT did not become ready" >&2; return 1
}

pg_up() {
  if ! pg_lsclusters -h | awk -v n=$PG_NAME '$2 == n' | grep -q .; then
    pg_createcluster $PG_VERSION $PG_NAME --port "$PG_PORT" -- --auth-local=trust >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v n=$PG_NAME '$2 == n && $4 == "online"' | grep -q .; then
    pg_ctlcluster $PG_VERSION $PG_NAME start
  fi
  pg_wait
  psql_p "ALTER USER postgres PASSWORD 'concord'" >/dev/null
  if [ "$(psql_p "select 1 from pg_database where datname='concord_test'")" != "1" ]; then psql_p "CREATE DATABASE concord_test" >/dev/null; fi
}

redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

redis_start() {
  mkdir -p "$REDIS_DIR"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --appendonly yes --appendfsync everysec --save "" \
    --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" >/dev/null
  for _ in $(seq 1 100); do redis_ping && return 0; sleep 0.1; done
  echo "fault-dbs: Redis on $REDIS_PORT did not start (see $REDIS_DIR/redis.log)" >&2; return 1
}

redis_wait_gone() {
  for _ in $(seq 1 100); do
    if ! [ -f "$REDIS_DIR/redis.pid" ] || ! kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "fault-dbs: Redis on $REDIS_PORT did not exit" >&2; return 1
}

redis_pid() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | awk -F: '/^process_id:/ {print $2}' | tr -d '\r'; }


# Stop, wait until the postmaster process has really exited (pg_ctl can return before it has: `restart` then found
# "another postmaster running" and failed the fault run), then start.
pg_restart() {
  local pidfile=/var/lib/postgresql/$PG_VERSION/$PG_NAME/postmaster.pid pid=""
  [ -f "$pidfile" ] && pid=$(head -1 "$pidfile")
  pg_ctlcluster $PG_VERSION $PG_NAME stop -m "$1" || true
  for _ in $(seq 1 600); do
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  pg_ctlcluster $PG_VERSION $PG_NAME start
  pg_wait
}

case "${1:-up}" in
  up)
    pg_up
    redis_ping || redis_start
    echo "CONCORD_FAULTS_PG=$PG_CONN"
    echo "CONCORD_FAULTS_REDIS=127.0.0.1:$REDIS_PORT"
    echo "CONCORD_FAULTS_PG_CLUSTER=$PG_VERSION $PG_NAME"
    ;;
  down)
    pg_ctlcluster $PG_VERSION $PG_NAME stop 2>/dev/null || true
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
    ;;
  drop)
    pg_dropcluster --stop $PG_VERSION $PG_NAME 2>/dev/null || true
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$REDIS_DIR"
    ;;
  pg-restart-fast) pg_restart fast ;;
  pg-restart-immediate) pg_restart immediate ;;
  redis-shutdown)
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
    redis_wait_gone; redis_start ;;
  redis-shutdown-nosave)
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    redis_wait_gone; redis_start ;;
  redis-sigkill)
    pid=$(redis_pid)
    [ -n "$pid" ] || { echo "fault-dbs: Redis on $REDIS_PORT is not running" >&2; exit 1; }
    kill -9 "$pid"
    redis_wait_gone; redis_start ;;
  *) echo "usage: $0 up|down|drop|pg-restart-fast|pg-restart-immediate|redis-shutdown|redis-shutdown-nosave|redis-sigkill" >&2; exit 2 ;;
esac
