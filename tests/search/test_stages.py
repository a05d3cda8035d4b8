"""The engine reports where a search's time goes (plan, database, ranking, facets),
to the sink of the context that ran it, and the request's stage clock records them."""

from __future__ import annotations

import time

from reelsearch.observability.stages import StageClock
from reelsearch.search.engine import BlockingSearchEngine, SearchEngine
from reelsearch.search.query import SearchQuery, parse_search
from reelsearch.search.timing import SearchStages, report_stages_to


def searched_with_sink(
    engine: BlockingSearchEngine, query: SearchQuery
) -> tuple[list[SearchStages], float]:
    """The stages reported by one search run in a context with a sink, and its wall time."""
    reported: list[SearchStages] = []

    async def work(inner: SearchEngine) -> float:
        report_stages_to(reported.append)
        started = time.perf_counter()
        await inner.search(query)
        return time.perf_counter() - started

    return reported, engine.run(work)


def test_search_reports_its_stages_once_adding_up_to_its_time(
    sample_engine: BlockingSearchEngine,
) -> None:
    """A search with facets reports plan, database, ranking and facets once, in that
    order, each a real duration, together no longer than the engine call."""
    # A year among the words keeps the statements (the postings answer "night" alone).
    query = parse_search([("q", "night 1984"), ("facets", "genres,decade")])
    reported, wall = searched_with_sink(sample_engine, query)
    [stages] = reported
    names = [name for name, _ in stages.items()]
    assert names == ["plan", "database", "ranking", "facets"]
    assert all(seconds >= 0 for _, seconds in stages.items())
    assert stages.database > 0 and stages.facets is not None and stages.facets > 0
    assert sum(seconds for _, seconds in stages.items()) <= wall


def test_search_without_facets_has_no_facet_stage(sample_engine: BlockingSearchEngine) -> None:
    """Facets are a stage only when the search counted them."""
    reported, _ = searched_with_sink(sample_engine, parse_search([("q", "the matrix")]))
    [stages] = reported
    assert [name for name, _ in stages.items()] == ["plan", "database", "ranking"]


def test_search_without_a_sink_reports_nothing(sample_engine: BlockingSearchEngine) -> None:
    """A search run where nobody listens (the CLI, warming) reports to no one, and a sink
    set by one context does not hear searches run from another."""
    reported, _ = searched_with_sink(sample_engine, parse_search([("q", "alien")]))
    assert len(reported) == 1
    sample_engine.search(parse_search([("q", "alien")]))  # a context without a sink
    assert len(reported) == 1


def test_stage_clock_records_engine_stages_apart_from_the_lap_holding_them() -> None:
    """The engine's stages are recorded as stages of their own, and the lap around the
    engine call keeps only the time they do not cover."""
    recorded: dict[str, float] = {}
    clock = StageClock(None, "/v1/search", recorded)
    clock.lap("parse")
    time.sleep(0.02)
    stages = SearchStages()
    stages.plan, stages.database, stages.ranking = 0.004, 0.006, 0.005
    clock.engine_stages(stages)
    clock.lap("engine")
    assert list(recorded) == ["parse", "plan", "database", "ranking", "engine"]
    assert [recorded["plan"], recorded["database"], recorded["ranking"]] == [0.004, 0.006, 0.005]
    # The lap spans the 20 ms sleep; the engine reported 15 ms of it.
    assert recorded["engine"] >= 0.02 - 0.015 - 0.001
