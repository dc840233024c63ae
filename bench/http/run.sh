#!/usr/bin/env bash
# HTTP load figures: `concord serve` (memory and embedded) with wrk vs redis-benchmark, same machine, loopback only.
# Usage: bench/http/run.sh [SECONDS_PER_RUN] > results.md   (needs: wrk, redis-server, redis-benchmark; builds Release)
# Every server this script starts listens on 127.0.0.1 and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${1:-8}"
CONNS="1 16 64"
CPORT=7411
RPORT=6390
CLI=src/Concord.Cli/bin/Release/net10.0/Concord.Cli.dll
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

[ -f "$CLI" ] || dotnet build src/Concord.Cli/Concord.Cli.csproj -c Release -warnaserror >/dev/null

# wrk output -> "rps p50_ms p99_ms non2xx"
parse_wrk() {
  python3 -c '
import re,sys
s=sys.stdin.read()
def ms(v,u): return float(v)*{"us":0.001,"ms":1.0,"s":1000.0}[u]
rps=float(re.search(r"Requests/sec:\s+([\d.]+)",s).group(1))
p50=re.search(r"\s50%\s+([\d.]+)(us|ms|s)\b",s); p99=re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b",s)
bad=re.search(r"Non-2xx or 3xx responses:\s+(\d+)",s)
print(f"{rps:.0f} {ms(*p50.groups()):.3f} {ms(*p99.groups()):.3f} {bad.group(1) if bad else 0}")'
}

threads_for() { if [ "$1" -ge 2 ]; then echo 2; else echo 1; fi; }

declare -A R
start_concord() { # backend
  local data="$WORK/data-$1"
  dotnet "$CLI" serve --backend "$1" --data "$data" --urls "http://127.0.0.1:$CPORT" >"$WORK/concord-$1.log" 2>&1 &
  PIDS+=($!); CPID=$!
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$CPORT/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  for i in $(seq 0 63); do curl -fs -X PUT -H 'If-None-Match: *' -H 'Content-Type: application/json' \
      -d '{"owner":"bench","n":1}' "http://127.0.0.1:$CPORT/v1/ns/bench/state/k/$i" >/dev/null; done
}
stop_pid() { kill "$1"; wait "$1" 2>/dev/null || true; }

for backend in memory embedded; do
  start_concord "$backend"
  for c in $CONNS; do
    t=$(threads_for "$c")
    R[concord-$backend-get-$c]=$(wrk -t"$t" -c"$c" -d"${DUR}s" --latency -s bench/http/get.lua "http://127.0.0.1:$CPORT" -- 64 | parse_wrk)
    R[concord-$backend-cas-$c]=$(wrk -t"$t" -c"$c" -d"${DUR}s" --latency -s bench/http/cas.lua "http://127.0.0.1:$CPORT" -- $(( c * 2 / t + 2 )) | parse_wrk)
  done
  stop_pid "$CPID"
done

# Redis: default config (no persistence) and appendfsync always (durable like the embedded engine).
redis_run() { # label extra-args...
  local label=$1; shift
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --dir "$WORK" --daemonize no "$@" >"$WORK/redis-$label.log" 2>&1 &
  local rp=$!; PIDS+=($rp)
  for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  for c in $CONNS; do
    local n=200000; [ "$label" = "fsync" ] && n=$(( c * 400 + 2000 ))
    local tests=get,set; [ "$label" = "fsync" ] && tests=set
    redis-benchmark -p "$RPORT" -c "$c" -n "$n" -t "$tests" -r 64 --csv -q > "$WORK/rb.csv"
    while IFS=, read -r test rps avg min p50 p95 p99 max; do
      test=${test//\"/}; [ "$test" = "test" ] && continue
      R[redis-$label-${test,,}-$c]="${rps//\"/} ${p50//\"/} ${p99//\"/} 0"
    done < "$WORK/rb.csv"
  done
  stop_pid "$rp"
}
redis_run plain
redis_run fsync --appendonly yes --appendfsync always

f() { echo "${R[$1]:-n/a n/a n/a 0}"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}')" "$1" "$2"; }
echo "| op | conns | concord memory req/s (p50 / p99 ms) | concord embedded req/s (p50 / p99 ms) | redis req/s (p50 / p99 ms) | memory ÷ redis | embedded ÷ redis |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for op in get cas; do
  for c in $CONNS; do
    read -r mr m50 m99 mbad <<<"$(f concord-memory-$op-$c)"
    read -r er e50 e99 ebad <<<"$(f concord-embedded-$op-$c)"
    rop=$([ "$op" = get ] && echo get || echo set)
    read -r rr r50 r99 _ <<<"$(f redis-plain-$rop-$c)"
    label=$([ "$op" = get ] && echo "GET" || echo "PUT If-Match vs SET")
    echo "| $label | $c | $mr ($m50 / $m99) | $er ($e50 / $e99) | $rr ($r50 / $r99) | $(ratio "$mr" "$rr") | $(ratio "$er" "$rr") |"
    [ "$mbad$ebad" = "00" ] || echo "<!-- non-2xx: memory $mbad, embedded $ebad -->"
  done
done
echo
echo "| durable write | conns | concord embedded PUT If-Match req/s (p50 / p99 ms) | redis SET appendfsync always req/s (p50 / p99 ms) | ratio |"
echo "|---|---:|---:|---:|---:|"
for c in $CONNS; do
  read -r er e50 e99 _ <<<"$(f concord-embedded-cas-$c)"
  read -r rr r50 r99 _ <<<"$(f redis-fsync-set-$c)"
  echo "| fsync before ack | $c | $er ($e50 / $e99) | $rr ($r50 / $r99) | $(ratio "$er" "$rr") |"
done
