"""What a page of hits says about itself: matched_title, highlights and explain.

Computed for the hits of the page returned only, from the match that found
them (``TextMatch``) and, when the page was ranked in Python, the
assessments already made.
"""

from __future__ import annotations

from typing import Any

from reelsearch.search.assessment import TIER_NAMES, Assessment
from reelsearch.search.engine import Hit
from reelsearch.search.highlight import spans
from reelsearch.search.normalize import normalize
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import Reader, Row
from reelsearch.search.rows import ALT_NORM_TITLES, NORM_TITLE, SEARCH_RANK, Page, titles_of_row


async def annotate(db: Reader, query: SearchQuery, page: Page, hits: list[Hit]) -> None:
    """matched_title, highlights and explain, for the hits of this page only."""
    match = page.match
    assert match is not None
    explain = query.explain
    known_by_rank = {} if explain else page.assessed  # explain: every hit assessed in full
    typo_ranks = page.typo_ranks
    # (the assessment, None for a hit with one title, not assessed; the titles, None
    # when the hit matched its own)
    assessed: list[tuple[Assessment | None, list[str] | None]] = []
    for row in page.rows:
        known = known_by_rank.get(row[SEARCH_RANK])
        if known is not None and not known.title_index:  # its own title: no others to split
            assessed.append((known, None))
            continue
        if known is None and not explain and not row[ALT_NORM_TITLES]:
            # One title, so the one it matched: assessing it would only say its tier,
            # which nothing here shows (most hits of a broad query's tiers).
            assessed.append((None, None))
            continue
        all_titles = titles_of_row(row)
        if known is None:  # not ranked by its words, or explained in full
            typo = row[SEARCH_RANK] in typo_ranks
            known = match.assess(all_titles, typo_match=typo, detail=explain)
        assessed.append((known, all_titles))
    shown = await _alternate_titles_shown(db, page.rows, assessed)
    prefix = match.highlight_prefix
    fields = query.fields  # every hit has these (row_to_hit)
    wants_title, wants_highlights = "matched_title" in fields, "highlights" in fields
    for hit, row, (assessment, titles), title in zip(hits, page.rows, assessed, shown, strict=True):
        words = match.matched_words(
            titles[assessment.title_index]
            if titles is not None and assessment is not None
            else row[NORM_TITLE],
            typo_match=row[SEARCH_RANK] in typo_ranks,
        )
        if wants_title:
            hit["matched_title"] = title
        if wants_highlights:
            highlights = {"title": spans(row[1], words, prefix)}
            if title is not None:
                highlights["matched_title"] = spans(title, words, prefix)
            hit["highlights"] = highlights
        if explain:
            assert assessment is not None  # explain assesses every hit
            hit["explain"] = _explain(assessment, titles or titles_of_row(row), words, row)


async def _alternate_titles_shown(
    db: Reader, rows: list[Row], assessed: list[tuple[Assessment | None, list[str] | None]]
) -> list[str | None]:
    """The displayed alternate title each hit matched best (None: its own title)."""
    wanted = {
        row[0]: titles[a.title_index]
        for row, (a, titles) in zip(rows, assessed, strict=True)
        if a is not None and a.title_index and titles is not None
    }
    if not wanted:
        return [None] * len(rows)
    marks = ",".join("?" * len(wanted))
    found: dict[int, str] = {}
    for movie_id, title in await db.rows(
        f"SELECT movie_id, title FROM alt_titles WHERE movie_id IN ({marks}) UNION ALL "
        f"SELECT id, original_title FROM movies WHERE id IN ({marks}) "
        "AND original_title IS NOT NULL ORDER BY 1, 2",
        [*wanted, *wanted],
    ):
        if movie_id not in found and normalize(title) == wanted[movie_id]:
            found[movie_id] = title
    return [found.get(row[0], wanted.get(row[0])) if row[0] in wanted else None for row in rows]


def _explain(
    assessment: Assessment, titles: list[str], words: frozenset[str], row: Row
) -> dict[str, Any]:
    """A hit's rank in its parts: compared in this order, lower first, popularity last."""
    return {
        "rank_key": [*assessment.sort_key, row[SEARCH_RANK]],
        "text_match": {
            "tier": assessment.tier,
            "tier_name": TIER_NAMES[assessment.tier],
            "title": titles[assessment.title_index],
            "alternate_title": assessment.title_index > 0,
            "matched_words": sorted(words),
        },
        "typos": assessment.typos,
        "exactness": {
            "exact_title": assessment.tier == 0,
            "words_in_typed_order": assessment.order,
            "missing_stop_words": assessment.missing,
            "split_or_joined_words": assessment.respaced,
        },
        "popularity": {"search_rank": row[SEARCH_RANK], "votes": row[4], "rating": row[3]},
    }
