#!/usr/bin/env bash
# Instructions the result cache adds to a miss, without the search, counted by callgrind:
# steady where CPU time is not (a shared, loaded machine). bench/miss_path_cpu.py --only
# on|off runs one app (engine answering from a memo) through WARM warm-up searches and then
# N or 3N never-asked ones; the difference of the two runs divided by 2N is the
# instructions per miss of that app, and on - off is what the cache adds.
#
#   bench/miss_path_instructions.sh DB [N] [WARM]            # this tree
#   PYTHONPATH=/tmp/before/src bench/miss_path_instructions.sh DB [N] [WARM]
set -euo pipefail
db=$1 n=${2:-300} warm=${3:-300}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
# One hash seed for every run: str and bytes hashes decide dict and set layouts (and so
# resizes and the collector's timing), which otherwise move the counts between runs.
export PYTHONHASHSEED=0
count() {  # instructions of one run of miss_path_cpu.py --only $1 with $2 rounds of N
    if ! valgrind --tool=callgrind --callgrind-out-file="$out/cg" python "$here/miss_path_cpu.py" \
        --db "$db" --only "$1" --rounds "$2" --per-round "$n" >/dev/null 2>"$out/log"; then
        tail -20 "$out/log" >&2
        exit 1
    fi
    grep -o 'Collected : [0-9]*' "$out/log" | grep -o '[0-9]*$'
}
for app in off on; do
    short=$(count "$app" 1)
    long=$(count "$app" 3)

    echo "$app: $(((long - short) / (2 * n))) instructions per miss"
done
rm -rf "$out"
