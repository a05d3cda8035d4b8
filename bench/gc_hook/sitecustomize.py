"""Times every generation-1 and -2 collection of a server's processes (bench/RESULTS.md,
"Tenth session": how long full collections paused a worker).

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``; with ``GCHOOK_OUT`` set,
each process appends one line per collection of generation 1 or 2 to that file:
``pid unix-time genN milliseconds collected=N``. Without it, nothing is installed.

    PYTHONPATH=bench/gc_hook GCHOOK_OUT=/tmp/gc.txt reelsearch serve --workers 2
    awk '$3 == "gen2"' /tmp/gc.txt        # the full collections and their pauses
"""

import gc
import os
import time

_OUT = os.environ.get("GCHOOK_OUT")
_started = [0.0]


def _timed(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = time.perf_counter() - _started[0]
    if info["generation"] >= 1:
        with open(_OUT, "a") as out:  # type: ignore[arg-type]
            out.write(f"{os.getpid()} {time.time():.3f} gen{info['generation']} "
                      f"{took * 1000:.2f}ms collected={info['collected']}\n")  # fmt: skip


if _OUT:
    gc.callbacks.append(_timed)
