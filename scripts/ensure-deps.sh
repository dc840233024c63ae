#!/usr/bin/env bash
# Installs and starts what Concord's tests, demos and benchmarks need. Idempotent; everything listens on loopback only.
#   PostgreSQL 15 (user postgres, password "concord", database concord_test) on 127.0.0.1:5432
#   Redis on 127.0.0.1:6379
#   Chromium (for the dashboard's browser tests)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet on PATH)" >&2; exit 1; }

need=()
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL: start the Debian cluster, set a password for TCP logins, create the test database.
if ! pg_lsclusters -h 2>/dev/null | awk '$4 == "online"' | grep -q .; then
  $SUDO pg_ctlcluster 15 main start || { echo "could not start PostgreSQL" >&2; exit 1; }
fi
for _ in $(seq 1 30); do
  if $SUDO -u postgres psql -qtAc "select 1" >/dev/null 2>&1 || su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done
pg() { if [ -z "$SUDO" ]; then su postgres -c "psql -qtAc \"$1\""; else sudo -u postgres psql -qtAc "$1"; fi; }
pg "ALTER USER postgres PASSWORD 'concord'" >/dev/null
if [ "$(pg "select 1 from pg_database where datname='concord_test'")" != "1" ]; then pg "CREATE DATABASE concord_test" >/dev/null; fi

# Redis: loopback only, AOF every second (the durability the Redis backend documents).
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --appendonly yes --appendfsync everysec --dir /tmp >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

export CONCORD_PG="${CONCORD_PG:-Host=127.0.0.1;Port=5432;Username=postgres;Password=concord;Database=concord_test}"
export CONCORD_REDIS="${CONCORD_REDIS:-127.0.0.1:6379}"
