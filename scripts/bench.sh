#!/usr/bin/env bash
# Regenerates docs/benchmarks.md (and its charts, docs/img/*.svg) in one command: every figure is Concord next to a peer
# measured in the same run, as a ratio. About 17 minutes on 2 cores:
#   1. the point-operation load suite (bench/Concord.Benchmarks `load all`): contended CAS vs ConcurrentDictionary,
#      durable acknowledged writes vs SQLite on the same disk, memory per key — 3 interleaved runs each;
#   2. the curves (`load curves`): CAS throughput and latency against concurrency and contention for Concord (memory,
#      embedded, over HTTP) and ConcurrentDictionary, SQLite, PostgreSQL, Redis and etcd; etcd transactions, locks and
#      leases; goodput of optimistic / lock / patch / queue strategies as contention rises (verified after every run);
#      the lab checkers' scaling with history size — 3 interleaved runs per point;
#   3. BenchmarkDotNet PointOpsBenchmarks (get, CAS put, patch vs ConcurrentDictionary), one launch of 9 iterations;
#   4. the report generator: markdown with machine details, medians and spread, ratios, charts and advice.
# etcd (Debian's etcd-server) is installed if missing and run privately for the duration: one member on 127.0.0.1,
# data under /tmp, its default fsync; this script starts it and stops it. PostgreSQL and Redis are the shared servers
# from scripts/ensure-deps.sh (the benchmark uses its own schema and key prefix and removes them).
# `scripts/bench.sh --quick` is a smoke test of the whole pipeline in about a minute and a half: tiny windows, one run,
# BenchmarkDotNet's dry job, and a report written to artifacts/bench/benchmarks-quick.md (docs/ is left alone).
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

# shellcheck source=scripts/ensure-deps.sh
. "$ROOT/scripts/ensure-deps.sh"   # sourced: exports CONCORD_PG and CONCORD_REDIS
if ! command -v etcd >/dev/null; then
  echo "installing: etcd-server etcd-client"
  SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
fi

# A private etcd for this run only.
ETCD_PORT="${CONCORD_BENCH_ETCD_PORT:-23790}"
ETCD_DIR=$(mktemp -d /tmp/concord-bench-etcd.XXXXXX)
ETCD_PID=""
stop_etcd() {
  if [ -n "$ETCD_PID" ]; then kill "$ETCD_PID" 2>/dev/null || true; wait "$ETCD_PID" 2>/dev/null || true; fi
  rm -rf "$ETCD_DIR"
}
trap stop_etcd EXIT
etcd --name concord-bench --data-dir "$ETCD_DIR/data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "concord-bench=http://127.0.0.1:$((ETCD_PORT + 1))" --listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 2))" \
  >"$ETCD_DIR/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 1 50); do
  ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 \
  || { echo "etcd did not start:" >&2; cat "$ETCD_DIR/etcd.log" >&2; exit 1; }
export CONCORD_ETCD="http://127.0.0.1:$ETCD_PORT"

dotnet build "$ROOT/bench/Concord.Benchmarks" -c Release -warnaserror -nologo -v quiet
DLL="$ROOT/bench/Concord.Benchmarks/bin/Release/net10.0/Concord.Benchmarks.dll"
mkdir -p "$OUT"
rm -rf "$OUT/bdn"

if [ $quick = 1 ]; then
  load_json="$OUT/load-quick.json"; curves_json="$OUT/curves-quick.json"; bdn_args="--job dry"
  report="$OUT/benchmarks-quick.md"; img="$OUT/img"
  dotnet "$DLL" load all --quick --out "$load_json"
  dotnet "$DLL" load curves --quick --out "$curves_json"
else
  # Short job, but 9 iterations of 250 ms: BenchmarkDotNet's 3-iteration short job is too jumpy on a shared 2-core machine.
  load_json="$OUT/load.json"; curves_json="$OUT/curves.json"; bdn_args="--launchCount 1 --warmupCount 3 --iterationCount 9 --iterationTime 250"
  report="$ROOT/docs/benchmarks.md"; img="$ROOT/docs/img"
  # Durable runs write under artifacts/ (the repository's disk) so Concord, SQLite and the rest share one disk by construction.
  dotnet "$DLL" load all --dir artifacts/bench/work --out artifacts/bench/load.json
  rm -rf "$OUT/work"
  dotnet "$DLL" load curves --dir artifacts/bench/work --out artifacts/bench/curves.json
  rm -rf "$OUT/work"
fi
stop_etcd; ETCD_PID=""

# shellcheck disable=SC2086 # bdn_args is a list of options
dotnet "$DLL" --filter '*PointOps*' $bdn_args --artifacts "$OUT/bdn"

dotnet "$DLL" report --load "$load_json" --bdn "$OUT/bdn/results" --curves "$curves_json" --img "$img" \
  --bdn-args "$bdn_args" --notes "$ROOT/bench/Concord.Benchmarks/Report/notes.md" --out "$report" \
  --command "scripts/bench.sh${1:+ $1}"
