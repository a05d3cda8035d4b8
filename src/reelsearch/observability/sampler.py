"""What each worker reads rather than counts, sampled once a tick off the request path.

Every ``metrics_sample_seconds`` a task in each worker process:

- measures event-loop lag (how late its own sleep ended);
- reads the process's CPU time, resident memory and open file descriptors,
  and the garbage collector's runs and pause time;
- reads the catalog database pool (in use, idle, waits), the time of its
  statements by query shape and its write transactions' outcomes, and the
  catalog served (version, movies, import time, duration and bad rows);
- runs the samplers others added (``add``: the result cache's hook), and
  every ``SHARED_EVERY_TICKS`` ticks the slower ones (``add_slow``: the
  sizes of the shared cache levels, a scan of Redis's namespace);
- drops the live gauges of worker processes that died.

Cumulative figures read from elsewhere (CPU seconds, pool waits, GC runs)
become counter increments through ``Deltas``, so they sum correctly over
workers, dead ones included.
"""

from __future__ import annotations

import dataclasses
import gc
import glob
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import anyio
from prometheus_client import multiprocess

from reelsearch.observability.metrics import Metrics
from reelsearch.observability.readiness import CatalogDatabase
from reelsearch.observability.tally import Deltas

logger = logging.getLogger("reelsearch.metrics")

# Figures that cost a scan (Redis's namespace) are read every this many ticks
# (10 s by default), by each worker: enough for a dashboard, and a bounded cost.
SHARED_EVERY_TICKS = 10
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


class GcPauses:
    """Adds up the time the garbage collector runs, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


class Sampler:
    """Samples one worker's process, pool and catalog into ``metrics``."""

    def __init__(
        self,
        metrics: Metrics,
        engine: Any,
        catalog_db: CatalogDatabase,
        every: float,
    ) -> None:
        self.metrics = metrics
        self.engine = engine
        self.catalog_db = catalog_db
        self.every = every
        self._cpu = Deltas()
        self._gc_runs = Deltas()
        self._gc_pause = Deltas()
        self._pool = Deltas()
        self._pool_wait = Deltas()
        self._transactions = Deltas()
        self._conflicts = Deltas()
        self._catalog_version: int | None = None
        self._extra: list[Callable[[], None]] = []
        self._slow: list[Callable[[], Awaitable[None]]] = []
        self._ticks = 0

    def add(self, sample: Callable[[], None]) -> None:
        """Call ``sample()`` every tick too (e.g. ``Metrics.track_cache``'s sampler)."""
        self._extra.append(sample)

    def add_slow(self, sample: Callable[[], Awaitable[None]]) -> None:
        """Await ``sample()`` on the first tick and every ``SHARED_EVERY_TICKS`` after."""
        self._slow.append(sample)

    async def run(self) -> None:
        """Sample until cancelled."""
        self.metrics.workers.set(1)
        failing = False
        with GcPauses() as pauses:
            while True:
                asleep = time.perf_counter()
                await anyio.sleep(self.every)
                self.metrics.loop_lag.observe(max(0.0, time.perf_counter() - asleep - self.every))
                try:
                    await self.sample(pauses)
                except Exception:  # a failed reading must never stop the sampling
                    if not failing:  # logged when it starts failing, not every tick
                        logger.exception("could not sample the metrics")
                    failing = True
                else:
                    failing = False

    async def sample(self, pauses: GcPauses) -> None:
        m = self.metrics
        m.flush()
        for _, grown in self._cpu.growth([("cpu", time.process_time())]):
            m.cpu.inc(grown)
        m.memory.set(resident_bytes())
        m.open_fds.set(open_fds())
        runs = ((str(gen), stats["collections"]) for gen, stats in enumerate(gc.get_stats()))
        for generation, grown in self._gc_runs.growth(runs):
            m.gc_collections.labels(generation).inc(grown)
        for _, grown in self._gc_pause.growth([("pause", pauses.seconds)]):
            m.gc_pause.inc(grown)
        self._sample_pool()
        self._sample_statements()
        await self._sample_catalog()
        for sample in self._extra:
            sample()
        if self._ticks % SHARED_EVERY_TICKS == 0:
            for slow in self._slow:
                await slow()
        self._ticks += 1
        if m.multiprocess_dir is not None:
            for pid in mark_dead_workers(m.multiprocess_dir, pid_exists):
                logger.info("worker %d is gone; its live gauges were dropped", pid)

    def _sample_pool(self) -> None:
        stats = read_pool_stats(self.engine)
        if stats is None:
            return
        m = self.metrics
        m.db_pool_size.set(stats["size"])
        for state in ("in_use", "idle", "overflow"):
            if state in stats:
                m.db_pool_connections.labels(state).set(max(0, stats[state]))
        events = [(e, stats[e]) for e in ("checkouts", "waits", "failures") if e in stats]
        for event, grown in self._pool.growth(events):
            m.db_pool_events.labels(event).inc(grown)
        if "wait_seconds" in stats:
            for _, grown in self._pool_wait.growth([("wait", stats["wait_seconds"])]):
                m.db_pool_wait.inc(grown)

    def _sample_statements(self) -> None:
        """Statement times by shape and write transactions, where the pool keeps them."""
        pool = getattr(getattr(self.engine, "engine", self.engine), "pool", None)
        times = getattr(pool, "statement_times", None)
        m = self.metrics
        if times is not None:
            m.observe_queries(times.drain())
        transactions = getattr(pool, "transactions", None)
        if transactions is not None:
            outcomes = [("committed", transactions.committed), ("retried", transactions.retries),
                        ("gave_up", transactions.gave_up)]  # fmt: skip
            for outcome, grown in self._transactions.growth(outcomes):
                m.db_transactions.labels(outcome).inc(grown)
            for sqlstate, grown in self._conflicts.growth(list(transactions.conflicts.items())):
                m.db_transaction_conflicts.labels(sqlstate).inc(grown)

    async def _sample_catalog(self) -> None:
        snapshot = self.engine.snapshot
        if snapshot.version == self._catalog_version:
            return
        m = self.metrics
        m.catalog_version.set(snapshot.version)
        m.catalog_movies.set(snapshot.movie_count)
        if snapshot.imported_at:  # read with the version (search/snapshot.py)
            imported_at = datetime.fromisoformat(snapshot.imported_at).timestamp()
            m.catalog_imported_at.set(imported_at)
            m.imported_at = imported_at
        for figure, value in (await self.catalog_db.import_figures()).items():
            m.catalog_import.labels(figure).set(value)
        self._catalog_version = snapshot.version


def read_pool_stats(engine: Any) -> dict[str, float] | None:
    """The engine's connection pool figures, or None if it exposes none.

    The SQLite engine may wrap the blocking one (``engine.engine``); both
    backends' pools have ``stats()`` (db/engine.py, db/postgres.py).
    """
    inner = getattr(engine, "engine", engine)
    pool = getattr(inner, "pool", None)
    read = getattr(pool, "stats", None)
    if read is None:
        return None
    stats = read()
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        stats = dataclasses.asdict(stats)
    return dict(stats)


# Process figures from /proc (Linux, where the service runs): what psutil would
# read, without a dependency for three numbers.
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """Resident memory of this process now."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def mark_dead_workers(path: str, is_alive: Callable[[int], bool]) -> list[int]:
    """Drop the live gauges of worker processes that are gone; their totals stay.

    Granian respawns a dead worker without telling the app, so each worker
    looks for files of pids no longer running (gunicorn's child_exit hook
    would do this in the master).
    """
    dead = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        found = _LIVE_GAUGE_FILE.search(name)
        if found and not is_alive(int(found[1])):
            dead.add(int(found[1]))
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
    return sorted(dead)
