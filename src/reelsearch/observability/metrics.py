"""Every Prometheus instrument of reelsearch, defined in one place.

``reelsearch serve --workers N`` runs N processes; a scrape reaches one of
them and must still see all of them. prometheus-client's multiprocess mode
does that: the serve command points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before any worker starts, each worker writes its values to
memory-mapped files there (named by pid), and ``/metrics`` sums the files.
Counters and histograms of a worker that died stay in its files, so a
restarted worker (new pid, new files) neither resets nor doubles a total.
Gauges say how to combine workers (``multiprocess_mode``); the ``live*``
modes leave out dead workers once ``mark_dead_workers`` has removed their
files, which every worker does as it samples (observability/sampler.py).

Without that directory (tests, one in-process app), the instruments belong
to one registry per ``Metrics`` object: no module-level state.

The hot path only counts: requests, errors, latency and stage buckets go
into plain dicts and lists in the worker (observability/tally.py), and
``flush`` adds them to the shared instruments every sampler tick and before
each scrape (a scrape sees its own worker exactly and the others as of their
last tick). Everything
read rather than counted (process, pool, catalog, requests in flight) is
sampled by ``observability/sampler.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reelsearch.db.timing import QUERY_BUCKETS, ShapeTimes
from reelsearch.observability.tally import Buckets, Deltas, Tally

# The variable prometheus-client itself reads (at import) to choose
# multiprocess mode: part of the library's contract, not a reelsearch setting.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request latency: from an L1 cache hit (~0.1 ms) to a deadline (seconds).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Stages are parts of a request: finer at the low end.
STAGE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
# Event-loop lag: how late a timer fires; 1 ms is noise, 100 ms is a stall.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# The label of requests no route matched (404s of scanners): one series, not one per path.
UNMATCHED = "<unmatched>"
# An error code becomes a label only if it looks like one of ours.
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


class Metrics:
    """The instruments of one app (one worker process)."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in files, collected per scrape.
        own: CollectorRegistry | None = None if multiprocess_dir else self.registry
        self.requests = Counter(
            "reelsearch_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=own,
        )
        self.latency = Histogram(
            "reelsearch_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.in_flight = Gauge(
            "reelsearch_http_requests_in_flight",
            "Requests being answered now (summed over live workers).",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.errors = Counter(
            "reelsearch_http_errors",
            "Error responses by route, status and error code (503s by cause).",
            ("route", "status", "code"),
            registry=own,
        )
        self.stages = Histogram(
            "reelsearch_search_stage_seconds",
            "Time of each stage of a search request: parse, plan, database, ranking, facets, "
            "engine (the rest of the engine call: pool, result cache), serialization.",
            ("route", "stage"),
            buckets=STAGE_BUCKETS,
            registry=own,
        )
        # Sampled (observability/sampler.py), never touched by a request.
        self.db_pool_connections = Gauge(
            "reelsearch_db_pool_connections",
            "Catalog database connections per state (in_use, idle, overflow).",
            ("state",),
            registry=own,
            multiprocess_mode="livesum",
        )
        self.db_pool_size = Gauge(
            "reelsearch_db_pool_size",
            "Configured connections kept per worker, summed over live workers.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.db_pool_events = Counter(
            "reelsearch_db_pool_events",
            "Pool events: checkouts, waits (no free connection), failures.",
            ("event",),
            registry=own,
        )
        self.db_pool_wait = Counter(
            "reelsearch_db_pool_wait_seconds",
            "Time spent waiting for a free connection.",
            registry=own,
        )
        self.db_query = Histogram(
            "reelsearch_db_query_duration_seconds",
            "Catalog statements by query shape (db/timing.py: a fixed set of names).",
            ("shape",),
            buckets=QUERY_BUCKETS,
            registry=own,
        )
        self.db_transactions = Counter(
            "reelsearch_db_transactions",
            "Write transactions by outcome: committed, retried (after a conflict), gave_up.",
            ("outcome",),
            registry=own,
        )
        self.db_transaction_conflicts = Counter(
            "reelsearch_db_transaction_conflicts",
            "Serialization failures (40001) and deadlocks (40P01) met by write transactions.",
            ("sqlstate",),
            registry=own,
        )
        self.catalog_version = Gauge(
            "reelsearch_catalog_version",
            "Catalog version served: the lowest among live workers (all have reached it).",
            registry=own,
            multiprocess_mode="livemin",
        )
        self.catalog_movies = Gauge(
            "reelsearch_catalog_movies",
            "Movies in the catalog served (the most recently loaded).",
            registry=own,
            multiprocess_mode="livemostrecent",
        )
        self.catalog_imported_at = Gauge(
            "reelsearch_catalog_imported_timestamp_seconds",
            "Unix time the catalog served was imported.",
            registry=own,
            multiprocess_mode="livemax",
        )
        self.catalog_import = Gauge(
            "reelsearch_catalog_import",
            "The served catalog's import, as recorded by it: seconds, rows read, bad rows.",
            ("figure",),
            registry=own,
            multiprocess_mode="livemostrecent",
        )
        self.dependency_up = Gauge(
            "reelsearch_dependency_up",
            "1 if every live worker's last check found the dependency up, else 0.",
            ("dependency",),
            registry=own,
            multiprocess_mode="livemin",
        )
        self.cpu = Counter(
            "reelsearch_process_cpu_seconds",
            "CPU time (user + system) of the worker processes.",
            registry=own,
        )
        self.memory = Gauge(
            "reelsearch_process_resident_memory_bytes",
            "Resident memory of the live worker processes, summed.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.open_fds = Gauge(
            "reelsearch_process_open_fds",
            "Open file descriptors of the live worker processes, summed.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.workers = Gauge(
            "reelsearch_process_workers",
            "Live worker processes.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.gc_collections = Counter(
            "reelsearch_gc_collections",
            "Garbage collector runs by generation.",
            ("generation",),
            registry=own,
        )
        self.gc_pause = Counter(
            "reelsearch_gc_pause_seconds",
            "Time the garbage collector stopped the worker.",
            registry=own,
        )
        self.loop_lag = Histogram(
            "reelsearch_event_loop_lag_seconds",
            "How late a sleeping task wakes: time the event loop was busy with something else.",
            buckets=LAG_BUCKETS,
            registry=own,
        )
        self._own = own
        self._cache_tracked = False
        self._tally = Tally()
        self.active = 0  # requests in flight in this worker (the middleware counts them)
        self.imported_at: float | None = None  # this worker's catalog, for the scrape

    @classmethod
    def from_environment(cls) -> Metrics:
        """Multiprocess instruments if the serve command prepared a directory, else local."""
        directory = os.environ.get(MULTIPROC_ENV) or None
        if directory is not None and values.ValueClass is values.MutexValue:
            # Each worker would count on its own and /metrics would show none of it.
            raise RuntimeError(
                f"{MULTIPROC_ENV} was set after prometheus-client was imported; "
                "set it before (reelsearch serve does)"
            )
        return cls(directory)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency: plain Python, flushed each tick."""
        key = (route, method, status)
        tally = self._tally
        tally.requests[key] = tally.requests.get(key, 0) + 1
        buckets = tally.latency.get(route)
        if buckets is None:
            buckets = tally.latency[route] = Buckets(LATENCY_BUCKETS)
        buckets.observe(seconds)

    def count_error(self, route: str, status: int, code: str) -> None:
        # A label only if it looks like one of ours; anything else is one series.
        label = code if _ERROR_CODE.fullmatch(code) else "other"
        key = (route, str(status), label)
        self._tally.errors[key] = self._tally.errors.get(key, 0) + 1

    def observe_stage(self, route: str, stage: str, seconds: float) -> None:
        key = (route, stage)
        buckets = self._tally.stages.get(key)
        if buckets is None:
            buckets = self._tally.stages[key] = Buckets(STAGE_BUCKETS)
        buckets.observe(seconds)

    def flush(self) -> None:
        """Move what requests tallied since the last flush into the shared instruments.

        Called by the sampler every tick, before a scrape renders, and at shutdown.
        A request costs a few dict and list updates (well under a microsecond);
        a memory-mapped counter or histogram update costs 1.5-3.5 µs each, and a
        search makes five of them (bench/RESULTS.md, "Observability").
        """
        tally, self._tally = self._tally, Tally()
        for (route, method, status), count in tally.requests.items():
            self.requests.labels(route, method, str(status)).inc(count)
        for error, count in tally.errors.items():
            self.errors.labels(*error).inc(count)
        for route, buckets in tally.latency.items():
            buckets.add_to(self.latency.labels(route))
        for stage, buckets in tally.stages.items():
            buckets.add_to(self.stages.labels(*stage))
        self.in_flight.set(self.active)

    def render(self, now: float) -> tuple[bytes, str]:
        """The text exposition of every worker's values, and its content type.

        Blocking (it reads every worker's files): callers ``flush`` on the event
        loop first, then may render in a thread.
        """
        if self.multiprocess_dir is None:
            registry = self.registry
        else:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        since_import = _SinceImport(self.imported_at, now)
        registry.register(since_import)
        try:
            return generate_latest(registry), CONTENT_TYPE_LATEST
        finally:
            registry.unregister(since_import)

    def track_cache(
        self,
        read_counters: Callable[[], Mapping[str, int]],
        read_levels: Callable[[], Mapping[str, Mapping[str, int]]],
    ) -> Callable[[], None]:
        """The hook for the result cache (issue 12): export its own cumulative statistics.

        ``read_counters()`` gives totals since start by event (hits, misses,
        stale_served, singleflight_waits, not_modified, ...);
        ``read_levels()`` gives per level (memory, redis, disk) ``entries`` and
        ``bytes`` (gauges) and ``evictions`` (a total). Returns the function
        the sampler calls each tick (``Sampler.add``): it turns the totals'
        growth into counter increments, so the request path of the cache pays
        nothing for metrics.
        """
        if self._cache_tracked:
            raise RuntimeError("the cache is already tracked")
        self._cache_tracked = True
        events = Counter(
            "reelsearch_cache_events",
            "Result cache events by kind (hits, misses, stale serves, waits, 304s...).",
            ("event",),
            registry=self._own,
        )
        evictions = Counter(
            "reelsearch_cache_evictions",
            "Entries evicted by cache level.",
            ("level",),
            registry=self._own,
        )
        sizes = Gauge(
            "reelsearch_cache_size",
            "Entries and bytes of each worker's own cache level (memory), summed over workers.",
            ("level", "unit"),
            registry=self._own,
            multiprocess_mode="livesum",
        )
        # Redis and disk are shared: every worker reads the same figures, so the last
        # reading counts (a sum would multiply them by the workers).
        self.cache_shared_size = Gauge(
            "reelsearch_cache_shared_size",
            "Entries and bytes of the cache levels the workers share (redis, disk).",
            ("level", "unit"),
            registry=self._own,
            multiprocess_mode="livemostrecent",
        )
        event_deltas = Deltas()
        eviction_deltas = Deltas()

        def sample() -> None:
            for event, grown in event_deltas.growth(read_counters().items()):
                events.labels(event).inc(grown)
            levels = read_levels()
            for level, grown in eviction_deltas.growth(
                (level, stats.get("evictions", 0)) for level, stats in levels.items()
            ):
                evictions.labels(level).inc(grown)
            for level, stats in levels.items():
                sizes.labels(level, "entries").set(stats.get("entries", 0))
                sizes.labels(level, "bytes").set(stats.get("bytes", 0))

        return sample

    def observe_queries(self, drained: Mapping[str, ShapeTimes]) -> None:
        """Add a pool's statement times (``StatementTimes.drain``) to the histogram."""
        for shape, times in drained.items():
            child: Any = self.db_query.labels(shape)
            child._sum.inc(times.total)  # as _Buckets.add_to: n observations at once
            for index, count in enumerate(times.counts):
                if count:
                    child._buckets[index].inc(count)

    def set_shared_cache_sizes(self, levels: Mapping[str, Mapping[str, int]]) -> None:
        """The shared levels' entries and bytes (``ResultCache.shared_level_sizes``)."""
        for level, stats in levels.items():
            for unit in ("entries", "bytes"):
                self.cache_shared_size.labels(level, unit).set(stats.get(unit, 0))


class _SinceImport(Collector):
    """Seconds since the served catalog was imported, computed at scrape time."""

    def __init__(self, imported_at: float | None, now: float) -> None:
        self.imported_at = imported_at
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.imported_at is not None:
            yield GaugeMetricFamily(
                "reelsearch_catalog_seconds_since_import",
                "Seconds since the served catalog was imported (per the scraped worker).",
                value=max(0.0, self.now - self.imported_at),
            )
