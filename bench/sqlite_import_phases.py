"""Run ``reelsearch ... import imdb`` on SQLite in this process and record per import phase:
wall time, the process's CPU (user+sys, every thread), and the time the main thread waited
for a CPU (run-queue time from ``/proc/thread-self/schedstat``). ``wall - wait`` estimates the
phase's wall time on a quiet machine (as bench/pg_import_phases.py does for PostgreSQL).

    cd /tmp/shared/imdb1m_src && python /path/to/bench/sqlite_import_phases.py \
        --database-url sqlite:////tmp/x/imp.db import -q imdb title.basics.tsv.gz \
        title.ratings.tsv.gz title.akas.tsv.gz

Runs whichever ``reelsearch`` the interpreter imports (main's venv or a branch's).
"""

import os
import sys
import time

from reelsearch import cli
from reelsearch.catalog import writer


def run_queue_wait() -> float:
    """Seconds the calling thread has waited for a CPU so far."""
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def cpu() -> float:
    times = os.times()
    return times.user + times.system


rows: list[tuple[str, float, float, float]] = []
last = [time.perf_counter(), cpu(), run_queue_wait()]
original_phase = writer.CatalogImport._phase


def timed_phase(self: writer.CatalogImport, name: str) -> None:
    now = [time.perf_counter(), cpu(), run_queue_wait()]
    rows.append((name, now[0] - last[0], now[1] - last[1], now[2] - last[2]))
    last[:] = now
    original_phase(self, name)


writer.CatalogImport._phase = timed_phase  # type: ignore[method-assign]
started = [time.perf_counter(), cpu(), run_queue_wait()]
try:
    cli.main(sys.argv[1:])
except SystemExit as exit_:
    if exit_.code:
        raise
total = (time.perf_counter() - started[0], cpu() - started[1], run_queue_wait() - started[2])
print(f"{'phase':<18} {'wall':>6} {'cpu':>6} {'wait':>6} {'quiet':>6}")
for name, wall, used, wait in [*rows, ("total", *total)]:
    print(f"{name:<18} {wall:6.1f} {used:6.1f} {wait:6.1f} {wall - wait:6.1f}")
print(f"load average {os.getloadavg()[0]:.2f}")
