"""What every search backend provides, and what a search returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from reelsearch.search.query import SearchQuery

if TYPE_CHECKING:
    from reelsearch.search.snapshot import CatalogSnapshot

Hit = dict[str, Any]


@dataclass(slots=True)
class SearchResult:
    """One page of hits plus what the client needs to show and page through them."""

    hits: list[Hit]
    total: int
    total_is_exact: bool
    facets: dict[str, dict[str, int]] | None
    next_cursor: str | None


class SearchEngine(Protocol):
    """A catalog search backend as the HTTP layer uses it: every call is awaited."""

    @property
    def snapshot(self) -> CatalogSnapshot: ...

    async def search(self, query: SearchQuery) -> SearchResult: ...

    async def autocomplete(self, query: SearchQuery) -> list[Hit]: ...

    async def get_movie(self, movie_id: int | str) -> Hit | None: ...

    async def refresh_if_changed(self) -> bool:
        """Reload per-catalog data if an import committed a new catalog; True if it did."""
        ...

    async def ping(self) -> None:
        """Raise if the catalog cannot be read."""
        ...

    async def close(self) -> None: ...


class BlockingSearchEngine(Protocol):
    """The same operations as plain calls, for the CLI, scripts and tests."""

    @property
    def snapshot(self) -> CatalogSnapshot: ...

    def search(self, query: SearchQuery) -> SearchResult: ...

    def autocomplete(self, query: SearchQuery) -> list[Hit]: ...

    def get_movie(self, movie_id: int | str) -> Hit | None: ...

    def refresh_if_changed(self) -> bool: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...
