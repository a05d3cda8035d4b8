#!/usr/bin/env bash
# Instructions per search of the engine, in process, counted by callgrind: steady
# where CPU time is not (a shared, loaded machine). Three runs of bench/engine_time.py
# under valgrind (setup only; setup + the first pass; setup + first + WARM warm passes);
# their differences are the first pass (every query seen for the first time) and a
# warm pass (plans and per-word caches filled), divided by the number of searches.
#
#   bench/engine_instructions.sh DB QUERIES [WARM]            # this tree
#   PYTHONPATH=/tmp/before/src bench/engine_instructions.sh DB QUERIES [WARM]
#   bench/engine_instructions.sh DB QUERIES WARM --freeze-heap   # more arguments: engine_time.py's
set -euo pipefail
db=$1 queries=$2 warm=${3:-2}
shift $(($# < 3 ? $# : 3))
extra=("$@")
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
count() {  # instructions of one run of engine_time.py with these arguments
    if ! valgrind --tool=callgrind --callgrind-out-file="$out/cg" python "$here/engine_time.py" \
        --db "$db" --queries "$queries" "${extra[@]}" "$@" >/dev/null 2>"$out/log"; then
        tail -20 "$out/log" >&2
        exit 1
    fi
    grep -o 'Collected : [0-9]*' "$out/log" | grep -o '[0-9]*$'
}
searches=$(wc -l <"$queries")
setup=$(count --stop-after setup)
first=$(count --stop-after first)
all=$(count --passes "$warm")
echo "searches $searches; instructions per search: first pass $(((first - setup) / searches)), warm $(((all - first) / warm / searches))"
rm -rf "$out"
