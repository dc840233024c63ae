#!/usr/bin/env bash
# The fault suite (docs/reliability.md): real `concord serve` processes on every backend (two nodes sharing the database
# for postgres/redis) under a nemesis (SIGKILL+restart, SIGSTOP past a lease expiry, proxy latency, a node cut off its
# database, and real restarts/crashes of the suite's PRIVATE PostgreSQL on 5439 and Redis on 6389, see
# scripts/fault-dbs.sh), recorded histories, the lab's checkers.
#   scripts/faults.sh            60 s per backend (embedded, postgres, redis)
#   scripts/faults.sh --quick    15 s per backend
#   scripts/faults.sh --soak     the 10-minute soak instead (add --quick for 30 s)
# Extra arguments go to the runner: --backend embedded|postgres|redis|all, --duration SECONDS, --seed N, --clients N,
# --nodes N, --no-real-db (simulate the database outage at a proxy; needs no root), --pg-idle-tx-timeout MS,
# --report FILE. Reports and histories land in artifacts/faults/. Loopback only; exits non-zero if any checker fails.
# The private databases are stopped at the end (scripts/fault-dbs.sh drop deletes them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. "$ROOT/scripts/ensure-deps.sh"   # sourced: exports CONCORD_PG and CONCORD_REDIS
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build "$ROOT/tests/Concord.Faults" -c Release -nologo -v quiet
mkdir -p "$ROOT/artifacts/faults"
exe="$ROOT/tests/Concord.Faults/bin/Release/net10.0/Concord.Faults"
if [[ " $* " == *" --soak "* ]]; then
  args=()
  for a in "$@"; do [ "$a" != "--soak" ] && args+=("$a"); done
  exec "$exe" soak "${args[@]}" --report "$ROOT/artifacts/faults/soak.md"
fi
# The runner starts the private databases itself (scripts/fault-dbs.sh up); stop them whatever happens.
trap 'bash "$ROOT/scripts/fault-dbs.sh" down >/dev/null 2>&1 || true' EXIT
# The first --report wins, so a caller's --report (in "$@") overrides the default.
"$exe" faults "$@" --report "$ROOT/artifacts/faults/faults.md"
