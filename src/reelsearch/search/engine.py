"""What every search backend provides, and what a search returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from reelsearch.search.query import SearchQuery

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
    """A catalog search backend. Methods block; the HTTP layer calls them in threads."""

    def search(self, query: SearchQuery) -> SearchResult: ...

    def autocomplete(self, query: SearchQuery) -> list[Hit]: ...

    def get_movie(self, movie_id: int) -> Hit | None: ...

    def refresh_if_changed(self) -> bool:
        """Reload per-catalog data if an import committed a new catalog; True if it did."""
        ...

    def ping(self) -> None:
        """Raise if the catalog cannot be read."""
        ...

    def close(self) -> None: ...
