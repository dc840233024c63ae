#!/usr/bin/env bash
# Concord on PostgreSQL and Redis next to pgbench, redis-benchmark and a SKIP LOCKED loop; writes
# docs/benchmarks-backends.md and artifacts/bench/backends.json. About 5 minutes; `--quick` for a smoke run.
#   scripts/bench-backends.sh [--quick] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-deps.sh >/dev/null
command -v pgbench >/dev/null || { echo "pgbench is required (postgresql-contrib / postgresql-15)" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark is required (redis-tools)" >&2; exit 1; }
dotnet build bench/Concord.Benchmarks -c Release -warnaserror -v q -nologo >/dev/null
out=docs/benchmarks-backends.md
json=artifacts/bench/backends.json
for a in "$@"; do if [ "$a" = --quick ]; then out=artifacts/bench/benchmarks-backends-quick.md; json=artifacts/bench/backends-quick.json; fi; done
dotnet bench/Concord.Benchmarks/bin/Release/net10.0/Concord.Benchmarks.dll load backends "$@" --out "$json" --md "$out"
