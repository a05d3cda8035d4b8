#!/usr/bin/env bash
# Instructions per miss through the app, cache on (memory + disk) and off, the engine
# answered from a memo (bench/miss_path_cpu.py --only): steady where CPU time is not on
# a shared, loaded machine. Valgrind runs the set-up uninstrumented (--instr-atstart=no,
# a few times slower than native, not ~50x); the driver turns callgrind's
# instrumentation on for exactly the timed requests (callgrind_control -i on/off, a
# handshake through files). Prints instructions per request for each app and on - off.
#
#   bench/miss_path_instructions.sh DB [MISSES]              # this tree
#   PYTHONPATH=/tmp/before/src bench/miss_path_instructions.sh DB [MISSES]
#   KEEP=/tmp/cg bench/miss_path_instructions.sh DB     # keeps callgrind.on / .off there
set -euo pipefail
db=$1 misses=${2:-1000}
here=$(cd "$(dirname "$0")" && pwd)
per_round=$((misses / 2))
count() {  # instructions of the timed requests of one app ("on" or "off")
    local dir
    dir=$(mktemp -d)
    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$dir/cg" python "$here/miss_path_cpu.py" --db "$db" \
        --only "$1" --rounds 2 --per-round "$per_round" --handshake "$dir" \
        >"$dir/out" 2>"$dir/log" &
    local pid=$!
    until [ -e "$dir/ready" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then tail -20 "$dir/log" >&2; exit 1; fi
        sleep 0.2
    done
    callgrind_control -i on "$pid" >/dev/null 2>&1
    touch "$dir/go"
    until [ -e "$dir/done" ]; do sleep 0.2; done
    callgrind_control -i off "$pid" >/dev/null 2>&1
    touch "$dir/end"
    wait "$pid" || { tail -20 "$dir/log" >&2; exit 1; }
    grep -o 'Collected : [0-9]*' "$dir/log" | grep -o '[0-9]*$'
    if [ -n "${KEEP:-}" ]; then cp "$dir/cg" "$KEEP/callgrind.$1"; fi  # for callgrind_annotate
    rm -rf "$dir"
}
on=$(count on) && off=$(count off)
timed=$((per_round * 2))
echo "instructions per request: cache off $((off / timed)), cache on $((on / timed)), on - off $(((on - off) / timed))"
