"""Stage timers for request handlers: ``clock = start_stages(request)``, then ``clock.lap(name)``.

Each lap is the time since the previous one (or since the clock started),
observed in ``reelsearch_search_stage_seconds{route, stage}`` and kept for
the slow-request log. Stages today, around the calls the HTTP code makes:

- ``parse``: query string to ``SearchQuery``;
- ``plan``, ``database``, ``ranking``, ``facets``: the engine's own parts of
  a search it ran for this request (``search/timing.py``), reported to the
  clock as they end;
- ``engine``: the rest of the engine's call: a connection from the pool and,
  for a search through the result cache, its answer: a stored one, or one
  computed (its engine stages above), encoded, compressed and stored now
  (L1 hits on the fast path never reach a route, so they have no stages);
- ``serialization``: the response body encoded (where it is not cached:
  autocomplete, explain).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.types import Scope

from reelsearch.observability.metrics import UNMATCHED, Metrics
from reelsearch.observability.requests import SCOPE_STAGES
from reelsearch.search.timing import SearchStages, report_stages_to


class StageClock:
    __slots__ = ("_inner", "_last", "_metrics", "_route", "_stages")

    def __init__(self, metrics: Metrics | None, route: str, stages: dict[str, float]) -> None:
        self._metrics = metrics
        self._route = route
        self._stages = stages
        self._last = time.perf_counter()
        self._inner = 0.0  # seconds of engine stages reported since the last lap

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        seconds = max(now - self._last - self._inner, 0.0)
        self._last = now
        self._inner = 0.0
        self._stages[stage] = seconds
        if self._metrics is not None:
            self._metrics.observe_stage(self._route, stage, seconds)

    def engine_stages(self, stages: SearchStages) -> None:
        """The engine's own stages of a search run for this request: each observed
        as a stage, and left out of the lap that contains them."""
        for stage, seconds in stages.items():
            self._stages[stage] = seconds
            self._inner += seconds
            if self._metrics is not None:
                self._metrics.observe_stage(self._route, stage, seconds)


def start_stages(request: Request) -> StageClock:
    """A clock for this request's stages (a no-op sink when observability is not set up)."""
    scope = request.scope
    instrumentation = getattr(request.app.state, "instrumentation", None)
    metrics = instrumentation.metrics if instrumentation is not None else None
    return stage_clock(scope, metrics, getattr(scope.get("route"), "path", UNMATCHED))


def stage_clock(scope: Scope, metrics: Metrics | None, route: str) -> StageClock:
    """``start_stages`` for a caller that knows its metrics and route (no ``Request``)."""
    stages = scope.get(SCOPE_STAGES)
    if stages is None:
        stages = {}
    clock = StageClock(metrics, route, stages)
    report_stages_to(clock.engine_stages)  # searches this request runs report here
    return clock
