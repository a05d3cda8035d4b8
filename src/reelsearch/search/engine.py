"""What every search backend provides, what a search returns, and the one
adapter that lets blocking callers (the CLI, scripts, tests) use any backend.

The interface is written once, async: SQLite and PostgreSQL engines both
implement it, and ``BlockingSearchEngine`` drives any of them from plain
calls, on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reelsearch.search.query import SearchQuery

if TYPE_CHECKING:
    from reelsearch.search.deadline import Deadline
    from reelsearch.search.snapshot import CatalogSnapshot

Hit = dict[str, Any]
T = TypeVar("T")


@dataclass(slots=True)
class SearchResult:
    """One page of hits plus what the client needs to show and page through them."""

    hits: list[Hit]
    total: int
    total_is_exact: bool
    facets: dict[str, dict[str, int]] | None
    next_cursor: str | None
    # Whether every word of the query was searched (True), or trailing words that
    # matched nothing were dropped (False); None: not a text search, or unknown.
    # The result cache's write invalidation reads it (cache/tags.py).
    all_words: bool | None = None


class SearchEngine(Protocol):
    """A catalog search backend: every call is awaited.

    ``search`` and ``autocomplete`` stop at ``deadline`` (raising
    ``SearchTimedOut``) or when it is cancelled (``SearchCancelled``);
    without one, the engine makes one from ``Settings.search_deadline_ms``.
    """

    @property
    def snapshot(self) -> CatalogSnapshot: ...

    def deadline(self) -> Deadline:
        """A new deadline for one request, from the settings."""
        ...

    def rules_version(self) -> str:
        """A digest of the relevance rules searches use now (re-read by the poller)."""
        ...

    async def search(
        self, query: SearchQuery, deadline: Deadline | None = None
    ) -> SearchResult: ...

    async def autocomplete(
        self, query: SearchQuery, deadline: Deadline | None = None
    ) -> list[Hit]: ...

    async def get_movie(self, movie_id: int | str) -> Hit | None: ...

    async def refresh_if_changed(self) -> bool:
        """Reload per-catalog data if an import committed a new catalog; True if it did."""
        ...

    async def ping(self) -> None:
        """Raise if the catalog cannot be read."""
        ...

    async def close(self) -> None: ...


class BlockingSearchEngine:
    """Any async engine driven by plain calls, on an event loop in a thread of its own.

    The engine's connections (asyncpg's, and SQLite statements that move to
    threads) belong to that loop, so every call is handed to it; the calling
    thread waits for the answer.
    """

    def __init__(self, open_engine: Callable[[], Awaitable[SearchEngine]]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="reelsearch-engine", daemon=True
        )
        self._thread.start()
        try:
            self.engine = self._run(_awaited(open_engine))
        except BaseException:
            self._stop()
            raise

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self.engine.snapshot

    def search(self, query: SearchQuery, deadline: Deadline | None = None) -> SearchResult:
        return self._run(self.engine.search(query, deadline))

    def autocomplete(self, query: SearchQuery, deadline: Deadline | None = None) -> list[Hit]:
        return self._run(self.engine.autocomplete(query, deadline))

    def get_movie(self, movie_id: int | str) -> Hit | None:
        return self._run(self.engine.get_movie(movie_id))

    def refresh_if_changed(self) -> bool:
        return self._run(self.engine.refresh_if_changed())

    def ping(self) -> None:
        self._run(self.engine.ping())

    def run(self, work: Callable[[SearchEngine], Awaitable[T]]) -> T:
        """``await work(engine)`` on the engine's loop: for callers that need more than a call."""
        return self._run(_awaited(lambda: work(self.engine)))

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


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()
