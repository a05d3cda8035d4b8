"""Open the search engine the settings ask for: SQLite (embedded) or PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from reelsearch.config import Settings
from reelsearch.search.engine import BlockingSearchEngine, Hit, SearchEngine, SearchResult
from reelsearch.search.query import SearchQuery
from reelsearch.search.snapshot import CatalogSnapshot

T = TypeVar("T")


async def open_search_engine(settings: Settings) -> SearchEngine:
    """The async engine for ``settings.database_url``, its catalog snapshot loaded."""
    if settings.backend == "postgresql":
        from reelsearch.search.postgres import PostgresSearchEngine

        return await PostgresSearchEngine.open(settings)
    from reelsearch.search.sqlite import AsyncSqliteEngine

    return await AsyncSqliteEngine.open(settings)


def open_blocking_engine(settings: Settings) -> BlockingSearchEngine:
    """An engine with plain (blocking) calls, for the CLI, scripts and tests."""
    if settings.backend == "postgresql":
        return BlockingEngine(settings)
    from reelsearch.search.sqlite import SqliteSearchEngine

    return SqliteSearchEngine(settings)


class BlockingEngine:
    """An async engine driven by plain calls, on an event loop in a thread of its own.

    The asyncpg connections belong to that loop, so every call is handed to
    it; the calling thread waits for the answer.
    """

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="reelsearch-engine", daemon=True
        )
        self._thread.start()
        try:
            self.engine = self._run(open_search_engine(settings))
        except BaseException:
            self._stop()
            raise

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self.engine.snapshot

    def search(self, query: SearchQuery) -> SearchResult:
        return self._run(self.engine.search(query))

    def autocomplete(self, query: SearchQuery) -> list[Hit]:
        return self._run(self.engine.autocomplete(query))

    def get_movie(self, movie_id: int | str) -> Hit | None:
        return self._run(self.engine.get_movie(movie_id))

    def refresh_if_changed(self) -> bool:
        return self._run(self.engine.refresh_if_changed())

    def ping(self) -> None:
        self._run(self.engine.ping())

    def close(self) -> None:
        try:
            self._run(self.engine.close())
        finally:
            self._stop()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
