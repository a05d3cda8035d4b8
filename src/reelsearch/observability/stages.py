"""Stage timers for request handlers: ``clock = start_stages(request)``, then ``clock.lap(name)``.

Each lap is the time since the previous one (or since the clock started),
observed in ``reelsearch_search_stage_seconds{route, stage}`` and kept for
the slow-request log. Stages today, around the calls the HTTP code makes:

- ``parse``: query string to ``SearchQuery``;
- ``engine``: the engine's call: planning, database reads, ranking, facets
  (one stage until the engine reports its own parts); for a search through
  the result cache, its answer: a stored one, or one computed, encoded,
  compressed and stored now (L1 hits on the fast path never reach a route,
  so they have no stages);
- ``serialization``: the response body encoded (where it is not cached:
  autocomplete, explain).
"""

from __future__ import annotations

import time

from starlette.requests import Request

from reelsearch.observability.metrics import UNMATCHED, Metrics
from reelsearch.observability.requests import SCOPE_STAGES


class StageClock:
    __slots__ = ("_last", "_metrics", "_route", "_stages")

    def __init__(self, metrics: Metrics | None, route: str, stages: dict[str, float]) -> None:
        self._metrics = metrics
        self._route = route
        self._stages = stages
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        seconds = now - self._last
        self._last = now
        self._stages[stage] = seconds
        if self._metrics is not None:
            self._metrics.observe_stage(self._route, stage, seconds)


def start_stages(request: Request) -> StageClock:
    """A clock for this request's stages (a no-op sink when observability is not set up)."""
    scope = request.scope
    route = scope.get("route")
    instrumentation = getattr(request.app.state, "instrumentation", None)
    metrics = instrumentation.metrics if instrumentation is not None else None
    stages = scope.get(SCOPE_STAGES)
    if stages is None:
        stages = {}
    return StageClock(metrics, getattr(route, "path", UNMATCHED), stages)
