"""Open the search engine the settings ask for: SQLite (embedded) or PostgreSQL."""

from __future__ import annotations

from reelsearch.config import Settings
from reelsearch.search.engine import BlockingSearchEngine, SearchEngine


async def open_search_engine(settings: Settings) -> SearchEngine:
    """The async engine for ``settings.database_url``, its catalog snapshot loaded."""
    if settings.backend == "postgresql":
        from reelsearch.search.postgres import PostgresSearchEngine

        return await PostgresSearchEngine.open(settings)
    from reelsearch.search.sqlite import SqliteSearchEngine

    return await SqliteSearchEngine.open(settings)


def open_blocking_engine(settings: Settings) -> BlockingSearchEngine:
    """An engine with plain (blocking) calls, for the CLI, scripts and tests."""
    return BlockingSearchEngine(lambda: open_search_engine(settings))
