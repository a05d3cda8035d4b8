#!/usr/bin/env bash
# The event-loop thread's CPU per cold search, engine vs the rest, in a real 2-worker server.
#
# Serves CATALOG through bench/loop_split_app.py (the app, wrapped to time engine.search
# with time.thread_time for requests 500..2500 of each worker), loads it with wrk over
# PATHS for 10 s, prints one JSON line per worker. Set REELSEARCH_CACHE=off for cold
# searches; PYTHONPATH=/other/src:bench measures another tree.
#   bench/loop_split.sh CATALOG.db PATHS.txt [PORT]
set -euo pipefail
db=$(realpath "$1"); paths=$(realpath "$2"); port=${3:-8302}
cd "$(dirname "$0")/.."
out=$(mktemp -d)/split
PYTHONPATH="${PYTHONPATH:-src}:bench" SPLIT_OUT="$out" PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) \
    REELSEARCH_DATABASE_URL="sqlite:///$db" python -c "
import os, sys
from reelsearch.config import Settings
from reelsearch.serving import serve
serve(Settings.from_env(os.environ, port=$port, workers=2), app_factory='loop_split_app:factory')
" > /tmp/loop_split_server.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
wrk -t2 -c16 -d10s -s bench/wrk/paths.lua "http://127.0.0.1:$port" -- "$paths" | grep "requests in"
kill "$server"; wait "$server" 2>/dev/null || true
for f in "$out".*.json; do cat "$f"; echo; done
