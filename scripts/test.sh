#!/usr/bin/env bash
# Runs Concord's whole test suite on a fresh machine: installs and starts what the tests need, builds,
# runs every test project, and ends with one line "tests: N passed, N failed[, N skipped]" computed
# from the TRX reports. Exits non-zero on any failure or if no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RESULTS="$ROOT/artifacts/test-results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

. "$ROOT/scripts/ensure-deps.sh"   # sourced: exports CONCORD_PG and CONCORD_REDIS

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build "$ROOT/Concord.slnx" -c Release -warnaserror -nologo -v quiet

status=0
for project in tests/*.Tests; do
  name=$(basename "$project")
  exe="$ROOT/$project/bin/Release/net10.0/$name"
  echo "== $name"
  # xunit.v3 test projects are self-hosting executables; CONCORD_TEST_ARGS passes filters (e.g. -class "*Lock*").
  # shellcheck disable=SC2086
  # Tests that stop PostgreSQL/Redis or reconfigure them run alone afterwards, so they cannot break the others.
  if ! "$exe" -result-trx "$RESULTS/$name.trx" -noColor -class- "*BackendFaultTests" -class- "*RedisServerChecksTests" ${CONCORD_TEST_ARGS:-}; then
    status=1
  fi
done

echo "== Concord.Tests (service faults, run alone)"
if ! CONCORD_SERVICE_FAULTS=1 "$ROOT/tests/Concord.Tests/bin/Release/net10.0/Concord.Tests" -result-trx "$RESULTS/Concord.Tests.services.trx" -noColor \
     -class "*BackendFaultTests" -class "*RedisServerChecksTests"; then
  status=1
fi

# The README's sample must keep working: build (above) and run it.
echo "== samples/MultiAgent"
if ! dotnet run --project "$ROOT/samples/MultiAgent" -c Release --no-build; then
  echo "samples/MultiAgent failed" >&2
  status=1
fi

# FaultSuiteTests start the fault suite's private PostgreSQL (5439) and Redis (6389); stop them (no-op if never started).
bash "$ROOT/scripts/fault-dbs.sh" down >/dev/null 2>&1 || true

python3 "$ROOT/scripts/count-trx.py" "$RESULTS" || status=1
exit $status
