"""Facet counts (genres, decades) over a whole filtered or matched result set."""

from __future__ import annotations

from typing import Any

from reelsearch.search.counting import TextStatements
from reelsearch.search.filters import Filters
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import Reader
from reelsearch.search.snapshot import CatalogSnapshot


async def count_facets(
    statements: TextStatements,
    db: Reader,
    snapshot: CatalogSnapshot,
    query: SearchQuery,
    filters: Filters,
    matched: str | None,
) -> dict[str, dict[str, int]]:
    if matched is None and not filters.sql:
        return {name: snapshot.catalog_facets[name] for name in query.facets}
    params: tuple[Any, ...]
    if matched is None:
        source, params = f"movies AS m WHERE TRUE{filters.sql}", filters.params
    else:
        source, params = f"{statements.text}{filters.sql}", (matched, *filters.params)
    facets: dict[str, dict[str, int]] = {}
    if "genres" in query.facets:
        names = [(bit, name) for bit, name in sorted(snapshot.genres.values())]
        add_up = statements.dialect.facet_sum.format
        sums = ", ".join(add_up(f"(m.genre_mask >> {bit}) & 1") for bit, _ in names) or "0"
        counts = await db.row(f"SELECT {sums} FROM {source}", params)
        assert counts is not None
        pairs = [(name, int(n)) for (_, name), n in zip(names, counts, strict=False) if n]
        facets["genres"] = dict(sorted(pairs, key=lambda pair: (-pair[1], pair[0])))
    if "decade" in query.facets:
        facets["decade"] = {
            str(decade): n
            for decade, n in await db.rows(
                f"SELECT m.year / 10 * 10 AS decade, count(*) FROM {source} "
                "AND m.year IS NOT NULL GROUP BY decade ORDER BY decade",
                params,
            )
        }
    return facets
