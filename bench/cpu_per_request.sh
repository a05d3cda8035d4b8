#!/usr/bin/env bash
# Server CPU per request, /health vs searches, on one reelsearch server.
#
# Reads user+system CPU of the granian processes from /proc around a bounded
# wrk run on 127.0.0.1, so the figure holds steady on a noisy machine.
#   bench/cpu_per_request.sh CATALOG.db PATHS.txt [PORT]
set -euo pipefail
db=$(realpath "$1"); paths=$(realpath "$2"); port=${3:-8301}
cd "$(dirname "$0")/.."
REELSEARCH_DATABASE_URL="sqlite:///$db" reelsearch serve --port "$port" --workers 2 \
    > /tmp/cpu_per_request.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.5; done
pids="$server $(pgrep -P "$server" | tr '\n' ' ')"
ticks=$(getconf CLK_TCK)
cpu() { local t=0 f; for p in $pids; do read -r -a f < "/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo "$t"; }
measure() {
    local label=$1; shift
    local before out after n
    before=$(cpu); out=$(wrk -t2 -c16 -d8s "$@" 2>&1); after=$(cpu)
    n=$(grep -oP '\d+(?= requests in)' <<<"$out")
    echo "$label: $n requests, $(( (after - before) * 1000000 / ticks / n )) us server CPU per request"
}
for _ in 1 2; do
    measure health "http://127.0.0.1:$port/health"
    measure search -s bench/wrk/paths.lua "http://127.0.0.1:$port" -- "$paths"
done
