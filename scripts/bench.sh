#!/usr/bin/env bash
# Runs Concord's benchmarks against their peers and regenerates docs/benchmarks.md (about 6 minutes on 2 cores):
#   1. the load suite (bench/Concord.Benchmarks `load all`): contended CAS goodput vs ConcurrentDictionary, durable
#      acknowledged writes vs SQLite on the same disk, memory per key vs ConcurrentDictionary — 3 interleaved runs each;
#   2. BenchmarkDotNet PointOpsBenchmarks (get, CAS put, patch vs ConcurrentDictionary), one launch of 9 iterations;
#   3. the report generator, which writes the markdown with machine details, ratios and verdicts on the issue's targets.
# `scripts/bench.sh --quick` is a smoke test of the whole pipeline in about a minute: tiny load runs, BenchmarkDotNet's
# dry job, and a report written to artifacts/bench/benchmarks-quick.md (docs/ is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/artifacts/bench"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
esac

"$ROOT/scripts/ensure-deps.sh"
dotnet build "$ROOT/bench/Concord.Benchmarks" -c Release -warnaserror -nologo -v quiet
DLL="$ROOT/bench/Concord.Benchmarks/bin/Release/net10.0/Concord.Benchmarks.dll"
mkdir -p "$OUT"
rm -rf "$OUT/bdn"

if [ $quick = 1 ]; then
  load_json="$OUT/load-quick.json"; bdn_args="--job dry"; report="$OUT/benchmarks-quick.md"
  dotnet "$DLL" load all --quick --out artifacts/bench/load-quick.json
else
  # Short job, but 9 iterations of 250 ms: BenchmarkDotNet's 3-iteration short job is too jumpy on a shared 2-core machine.
  load_json="$OUT/load.json"; bdn_args="--launchCount 1 --warmupCount 3 --iterationCount 9 --iterationTime 250"; report="$ROOT/docs/benchmarks.md"
  # Durable runs write under artifacts/ (the repository's disk) so Concord and SQLite share one disk by construction.
  dotnet "$DLL" load all --dir artifacts/bench/work --out artifacts/bench/load.json
  rm -rf "$OUT/work"
fi

# shellcheck disable=SC2086 # bdn_args is a list of options
dotnet "$DLL" --filter '*PointOps*' $bdn_args --artifacts "$OUT/bdn"

dotnet "$DLL" report --load "$load_json" --bdn "$OUT/bdn/results" \
  --bdn-args "$bdn_args" --notes "$ROOT/bench/Concord.Benchmarks/Report/notes.md" --out "$report" \
  --command "scripts/bench.sh${1:+ $1}"
