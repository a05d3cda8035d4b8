"""The observability of one app, wired in three places of ``create_app``.

``Instrumentation(settings)`` configures logging and builds the metrics;
``request_observer(routes)`` is what the app's front layer calls for every
request (http/middleware/front.py), ``profiling(app)`` answers ``profile=1``;
``routes`` adds ``/metrics``; in the lifespan, ``attach(engine)`` then
``run()`` samples the process and watches the dependencies until shutdown.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
from prometheus_client import multiprocess
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from reelsearch.config import Settings
from reelsearch.observability.linewriter import BatchedStreamHandler
from reelsearch.observability.logging import configure_logging
from reelsearch.observability.metrics import Metrics
from reelsearch.observability.profiling import ProfiledRequests
from reelsearch.observability.readiness import Readiness, ReadinessReport
from reelsearch.observability.requests import RequestObserver
from reelsearch.observability.sampler import Sampler
from reelsearch.observability.slowlog import SlowRequestLog

logger = logging.getLogger("reelsearch.metrics")

# Dependencies are checked this often in the background too, so a failure
# and its recovery are logged (once each) even when nobody polls /ready.
DEPENDENCY_CHECK_SECONDS = 5.0


class Instrumentation:
    def __init__(self, settings: Settings) -> None:
        self.log_handler = configure_logging(settings)
        self.settings = settings
        self.metrics = Metrics.from_environment() if settings.metrics_enabled else None
        self.slow_log = SlowRequestLog(settings.slow_request_ms)
        self._readiness: Readiness | None = None
        self._sampler: Sampler | None = None

    def request_observer(self, routes: Sequence[BaseRoute]) -> RequestObserver:
        """What the outermost layer calls for every response, refusals included."""
        static = {r.path: r.path for r in routes if isinstance(r, Route) and "{" not in r.path}
        return RequestObserver(
            metrics=self.metrics,
            slow_log=self.slow_log,
            access_log=self.settings.access_log,
            static_routes=static,
        )

    def profiling(self, app: ASGIApp) -> ASGIApp:
        """``app`` behind the ``profile=1`` answer (the front layer puts it after the
        rate limit and key checks)."""
        return ProfiledRequests(app, admin_token=self.settings.admin_token)

    @property
    def routes(self) -> list[Route]:
        return [Route("/metrics", self._metrics_endpoint, methods=["GET"])] if self.metrics else []

    def attach(self, engine: Any) -> None:
        """Start observing ``engine`` (the lifespan opened it)."""
        self._readiness = Readiness(self.settings, engine.ping)
        self.slow_log.engine = engine
        if self.metrics is not None:
            self._sampler = Sampler(
                self.metrics, engine, self._readiness.database, self.settings.metrics_sample_seconds
            )

    @property
    def sampler(self) -> Sampler | None:
        return self._sampler

    def track_cache(
        self,
        read_counters: Callable[[], Mapping[str, int]],
        read_levels: Callable[[], Mapping[str, Mapping[str, int]]],
        read_shared: Callable[[], Awaitable[Mapping[str, Mapping[str, int]]]] | None = None,
    ) -> None:
        """Export the result cache's statistics, sampled each tick (``Metrics.track_cache``):
        nothing more on the request path than the cache's own counting. ``read_shared``
        gives the shared levels' sizes (``ResultCache.shared_level_sizes``): read every
        few ticks, as it scans Redis."""
        if self.metrics is not None and self._sampler is not None:
            metrics = self.metrics
            self._sampler.add(metrics.track_cache(read_counters, read_levels))
            if read_shared is not None:

                async def sample_shared() -> None:
                    metrics.set_shared_cache_sizes(await read_shared())

                self._sampler.add_slow(sample_shared)

    async def check_readiness(self) -> ReadinessReport:
        assert self._readiness is not None, "attach(engine) first"
        report = await self._readiness.check()
        if self.metrics is not None:
            for state in report.dependencies:
                self.metrics.dependency_up.labels(state.name).set(1 if state.is_up else 0)
        return report

    async def run(self) -> None:
        """Sample and watch the dependencies until cancelled (the app's shutdown)."""
        try:
            async with anyio.create_task_group() as tasks:
                if self._sampler is not None:
                    tasks.start_soon(self._sampler.run)
                tasks.start_soon(self._watch_dependencies)
        finally:
            if self.metrics is not None:
                self.metrics.flush()  # what this worker counted since the last tick
            if self.metrics is not None and self.metrics.multiprocess_dir is not None:
                # This worker's live gauges leave with it; its totals stay.
                path = self.metrics.multiprocess_dir
                multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]

    def flush_logs(self) -> None:
        """Write the log lines still queued (the app's shutdown: a worker may end by
        ``os._exit``, which skips logging's own flush at exit). A plain stream handler
        (a test's in-memory stream) has written each line already."""
        if isinstance(self.log_handler, BatchedStreamHandler):
            self.log_handler.flush()

    async def _watch_dependencies(self) -> None:
        while True:
            try:
                await self.check_readiness()
            except Exception:  # the watch must outlive any one failure
                logger.exception("could not check the dependencies")
            await anyio.sleep(DEPENDENCY_CHECK_SECONDS)

    async def _metrics_endpoint(self, request: Request) -> Response:
        assert self.metrics is not None
        self.metrics.flush()  # this worker's latest counts, exactly
        # Reading N workers' files is blocking work: off the event loop.
        body, content_type = await anyio.to_thread.run_sync(self.metrics.render, time.time())
        return Response(body, media_type=content_type)
