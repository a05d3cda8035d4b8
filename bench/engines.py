"""How each engine spells a search request and its answer.

Why: recall and load must send both engines the *same* logical query. Keeping the mapping from
one query (text + filters, in reelsearch's own parameter names) to each engine's URL path in one
place means the two measurements cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

Filters = Mapping[str, Any]  # keys: year_from, year_to, genres (comma-separated), min_rating, ...


class Engine(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def search_path(self, q: str, filters: Filters, limit: int = 10) -> str: ...

    def hit_ids(self, body: Any) -> list[int]: ...


@dataclass(frozen=True)
class Reelsearch:
    """reelsearch's public API: ``GET /v1/search?q=&limit=`` plus filter parameters."""

    base_url: str
    name: str = "reelsearch"
    headers: Mapping[str, str] = field(default_factory=dict)
    health_path: str = "/health"

    def search_path(self, q: str, filters: Filters, limit: int = 10) -> str:
        params: dict[str, Any] = {"q": q, "limit": limit}
        params.update({k: v for k, v in filters.items() if v is not None})
        return "/v1/search?" + urlencode(params)

    def hit_ids(self, body: Any) -> list[int]:
        return [int(hit["id"]) for hit in body["hits"]]


def typesense_filter_by(filters: Filters) -> str:
    """Translate reelsearch-style filters into a Typesense ``filter_by`` expression."""
    clauses: list[str] = []
    year_from, year_to = filters.get("year_from"), filters.get("year_to")
    if year_from is not None and year_to is not None:
        clauses.append(f"year:[{int(year_from)}..{int(year_to)}]")
    elif year_from is not None:
        clauses.append(f"year:>={int(year_from)}")
    elif year_to is not None:
        clauses.append(f"year:<={int(year_to)}")
    if filters.get("genres"):
        genres = [g.strip() for g in str(filters["genres"]).split(",") if g.strip()]
        clauses.append("genres:[" + ",".join(f"`{g}`" for g in genres) + "]")
    if filters.get("min_rating") is not None:
        clauses.append(f"rating:>={float(filters['min_rating'])}")
    if filters.get("min_votes") is not None:
        clauses.append(f"votes:>={int(filters['min_votes'])}")
    return " && ".join(clauses)


@dataclass(frozen=True)
class Typesense:
    """Typesense's search endpoint, with the settings the bench compares against."""

    base_url: str
    api_key: str
    name: str = "typesense"
    collection: str = "movies"
    health_path: str = "/health"
    query_by: str = "title"  # relevance.py: "title,alt_titles" (earlier fields weigh more)
    extra_params: Mapping[str, str] = field(default_factory=dict)  # e.g. split_join_tokens

    @property
    def headers(self) -> Mapping[str, str]:
        return {"X-TYPESENSE-API-KEY": self.api_key}

    def search_path(self, q: str, filters: Filters, limit: int = 10) -> str:
        params: dict[str, Any] = {
            "q": q,
            "query_by": self.query_by,
            "sort_by": "_text_match:desc,votes:desc",
            "per_page": limit,
            "prefix": "true",  # typo settings stay at Typesense's defaults
            **self.extra_params,
        }
        filter_by = typesense_filter_by(filters)
        if filter_by:
            params["filter_by"] = filter_by
        return f"/collections/{self.collection}/documents/search?" + urlencode(params)

    def hit_ids(self, body: Any) -> list[int]:
        return [int(hit["document"]["id"]) for hit in body["hits"]]
