#!/usr/bin/env bash
# Two builds' servers alternated under the same wrk load: req/s, p99 and non-2xx answers.
#
# Why: on a shared, noisy machine two bench/run.py runs minutes apart differ by 10-25 %;
# alternating the two servers round by round, on the same paths, puts their difference
# above the drift. Each round starts a 2-worker server of each build (result cache off,
# access lines off), warms it 3 s, then runs wrk --latency 8 s at each concurrency over
# the search paths (bench/queries.py's paths-reelsearch.txt), and stops it. Loopback only.
#
#   bench/alternate_servers.sh PATHS ROUNDS NAME=VENV=DATABASE_URL NAME=VENV=DATABASE_URL
#   e.g. bench/alternate_servers.sh /tmp/q/paths-reelsearch.txt 2 \
#       before=/tmp/cv1=postgresql+asyncpg://postgres@127.0.0.1:5432/rs_sample_v1 \
#       after=/tmp/cv2=postgresql+asyncpg://postgres@127.0.0.1:5432/rs_sample
# Extra server settings come from the environment (REELSEARCH_DB_POOL_SIZE=4 ...).
set -euo pipefail
paths=$(realpath "$1"); rounds=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
port=${PORT:-8411}
run() {  # NAME VENV URL
    local name=$1 venv=$2 url=$3 server out rps p99 bad
    REELSEARCH_DATABASE_URL=$url REELSEARCH_CACHE=off REELSEARCH_ACCESS_LOG=false \
        "$venv/bin/reelsearch" serve --port "$port" --workers 2 >"/tmp/alternate_$name.log" 2>&1 &
    server=$!
    for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.5; done
    wrk -t2 -c16 -d3s -s "$here/wrk/paths.lua" "http://127.0.0.1:$port" -- "$paths" >/dev/null 2>&1
    for c in ${CONCURRENCY:-16 64}; do
        out=$(wrk -t2 -c"$c" -d8s --latency -s "$here/wrk/paths.lua" "http://127.0.0.1:$port" -- "$paths" 2>&1)
        rps=$(grep -oP 'Requests/sec:\s+\K[\d.]+' <<<"$out")
        p99=$(grep -oP '^\s+99%\s+\K\S+' <<<"$out")
        bad=$(grep -oP 'Non-2xx or 3xx responses: \K\d+' <<<"$out" || true)
        echo "$name c=$c req/s $rps p99 $p99 non-2xx ${bad:-0}"
    done
    kill "$server"; wait "$server" 2>/dev/null || true
}
for round in $(seq "$rounds"); do
    echo "round $round"
    for target in "$@"; do
        IFS='=' read -r name venv url <<<"$target"
        run "$name" "$venv" "$url"
    done
done
