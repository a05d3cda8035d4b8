"""Where one search's engine time goes: plan, database, ranking, facets.

The engine times its own parts of a search (``SearchStages``) and hands them
to whoever asked for them in this context: the HTTP layer's stage clock
(``observability/stages.py``) sets a sink per request, so the engine needs no
new parameter on its interface and a caller without a sink (the CLI, scripts,
background warming) pays only a context-variable read per search.

The stages, which add up to the engine's time for the search:

- ``plan``: the query's plan and its text-index expressions (an LRU hit for a
  recurring query);
- ``database``: statements, from sending to the last row fetched, except the
  facet counts' (on PostgreSQL this includes the round trips);
- ``ranking``: the rest of the algorithm in Python: ranking the candidates,
  highlights and explain, building the hits;
- ``facets``: counting the facets, their statements included (only when the
  search asked for facets).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

__all__ = ["SearchStages", "StageSink", "report_stages_to", "stage_sink"]


class SearchStages:
    """Seconds spent in each stage of one search."""

    __slots__ = ("database", "facets", "plan", "ranking")

    def __init__(self) -> None:
        self.plan = 0.0
        self.database = 0.0
        self.ranking = 0.0
        self.facets: float | None = None  # None: no facets asked

    def items(self) -> list[tuple[str, float]]:
        """(stage, seconds) in the order the stages happen; facets only if counted."""
        found = [("plan", self.plan), ("database", self.database), ("ranking", self.ranking)]
        if self.facets is not None:
            found.append(("facets", self.facets))
        return found


StageSink = Callable[[SearchStages], None]

_SINK: ContextVar[StageSink | None] = ContextVar("reelsearch_search_stages", default=None)


def report_stages_to(sink: StageSink | None) -> None:
    """Searches run from this context (and tasks it starts) report their stages to ``sink``."""
    _SINK.set(sink)


def stage_sink() -> StageSink | None:
    """The sink searches in this context report to, if any."""
    return _SINK.get()
