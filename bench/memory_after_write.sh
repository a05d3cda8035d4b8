#!/usr/bin/env bash
# PSS of a 2-worker server before and after a catalog write and its reload.
#
# Why: each worker freezes its heap after start-up and, when the catalog version changes,
# unfreezes, collects and freezes again (src/reelsearch/cache/heap.py); that collection
# walks what the workers inherited from the serving process too (decision 0044). This
# copies a SQLite catalog (with its .words/.postings/.rows files) to a temporary
# directory, serves it on 127.0.0.1, sends 300 searches (bench/memory.py's warm-up),
# reads the whole server's PSS, writes one movie through the documents API, waits 35 s
# (the poller's reload and the at-most-every-30-s refreeze), sends 300 other searches and
# reads the PSS again. Stops the server it started.
#
#   bench/memory_after_write.sh VENV CATALOG.db [PORT]
set -euo pipefail
venv=$1; catalog=$(realpath "$2"); port=${3:-8431}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
cp "$catalog" "$catalog".words-* "$catalog".postings-* "$catalog".rows-* "$work/" 2>/dev/null || true
db="$work/$(basename "$catalog")"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
REELSEARCH_ADMIN_TOKEN=$token REELSEARCH_DATABASE_URL="sqlite:///$db" \
    "$venv/bin/reelsearch" serve --port "$port" --workers 2 >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.5; done
pss() {  # MiB, summed over the server and its workers
    local total=0 kib p
    for p in $server $(pgrep -P "$server"); do
        kib=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup"); total=$((total + kib))
    done
    echo $((total / 1024))
}
searches() {  # 300 searches, bench/memory.py's warm-up drawn with seed $1
    (cd "$here" && "$venv/bin/python" -c "
import sys
from pathlib import Path
import httpx
from memory import warm_up_queries
with httpx.Client(base_url='http://127.0.0.1:$port', timeout=30) as client:
    for q in warm_up_queries(Path('$db'), seed=$1):
        client.get('/v1/search', params={'q': q}).raise_for_status()
")
}
searches 1; sleep 2
echo "after 300 searches: $(pss) MiB"
curl -sf -o /dev/null -X PUT "http://127.0.0.1:$port/v1/movies/bench:1" \
    -H "Authorization: Bearer $token" -d '{"title": "Zorblax Quintessence", "year": 2024}'
sleep 35
searches 2; sleep 2
echo "after a write, its reload and 300 more searches: $(pss) MiB"
