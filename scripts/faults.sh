#!/usr/bin/env bash
# The fault suite (docs/reliability.md): real `concord serve` processes on every backend under a nemesis
# (SIGKILL+restart, SIGSTOP past a lease expiry, proxy latency, database cut off), recorded histories, the lab's checkers.
#   scripts/faults.sh            60 s per backend (embedded, postgres, redis)
#   scripts/faults.sh --quick    15 s per backend
#   scripts/faults.sh --soak     the 10-minute soak instead (add --quick for 30 s)
# Extra arguments go to the runner: --backend embedded|postgres|redis|all, --duration SECONDS, --seed N.
# Reports land in artifacts/faults/. Loopback only; exits non-zero if any checker fails.
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
  exec "$exe" soak --report "$ROOT/artifacts/faults/soak.md" "${args[@]}"
fi
exec "$exe" faults --report "$ROOT/artifacts/faults/faults.md" "$@"
