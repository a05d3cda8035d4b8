"""Python opcodes per miss, by function, with the cache on and off: exact on any machine.

Runs bench/miss_path_cpu.py's ``--only`` mode (the engine answered from a memo) with
a tracer (``sys.settrace``, opcode events) on for exactly the timed requests, and
prints the opcodes per request of each app and the functions whose count differs
most. What the cache's own Python does per miss, where CPU time on a loaded machine
cannot say (decision 0034). The disk level's 50 ms catch-up checks land in a traced
run far more often per request than in a server (tracing is slow): a few dozen
opcodes of ``may_hold`` / ``catch_up`` are that.

    PYTHONHASHSEED=0 python bench/miss_path_opcodes.py --db ./reelsearch.db [--misses 1000]
    PYTHONPATH=/tmp/before/src PYTHONHASHSEED=0 python bench/miss_path_opcodes.py --db ...
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import miss_path_cpu

Site = tuple[str, str]  # (file, function)


def count_opcodes(db: Path, only: str, misses: int) -> Counter[Site]:
    """Opcodes run per function over ``misses`` never-asked searches through one app."""
    counts: Counter[Site] = Counter()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            code = frame.f_code
            counts[(code.co_filename.rsplit("src/", 1)[-1], code.co_name)] += 1
        return local

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    async def handshake(folder: Path | None, say: str, wait_for: str) -> None:
        sys.settrace(on_call if say == "ready" else None)

    miss_path_cpu._handshake = handshake  # type: ignore[assignment]
    # A handshake folder is needed for the run to call it; nothing is written there.
    asyncio.run(miss_path_cpu.run(db, 2, misses // 2, only, False, Path(".")))
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--misses", type=int, default=1000)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args()
    on = count_opcodes(args.db, "on", args.misses)
    off = count_opcodes(args.db, "off", args.misses)
    n = args.misses
    total_on, total_off = sum(on.values()) / n, sum(off.values()) / n
    print(f"opcodes per request: cache off {total_off:,.0f}, cache on {total_on:,.0f}, "
          f"on - off {total_on - total_off:+,.0f}")  # fmt: skip
    print("\n| on - off | function |\n| ---: | --- |")
    sites = sorted(set(on) | set(off), key=lambda s: -abs(on[s] - off[s]))
    for file, function in sites[: args.top]:
        print(f"| {(on[(file, function)] - off[(file, function)]) / n:+.1f} | {file}:{function} |")


if __name__ == "__main__":
    main()
