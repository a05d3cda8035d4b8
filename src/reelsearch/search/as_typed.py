"""The as-typed tiers of a relevance page: every title matching the words as typed,
in tiers 1-4 (``tiered.py``), with how many there are.

A small set (up to ``PROBE_ROWS``) is read whole, from the catalog's postings
(``rank_sets.py``) or in one probe statement, and ranked in Python from its
titles; a broad one takes its last tier (every word) from the probe's rows and
each other tier's best rows from the postings too (``RankSets.tier_rows``), or, where
a part is too broad for them, from the index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelsearch.search.assessment import Assessment
from reelsearch.search.filters import Filters
from reelsearch.search.matching import TextMatch
from reelsearch.search.normalize import JOINED_TITLES
from reelsearch.search.rank_sets import RankSets
from reelsearch.search.readers import Reader, Row
from reelsearch.search.rows import ALT_NORM_TITLES, NORM_TITLE

if TYPE_CHECKING:
    from reelsearch.search.pages import TextPages

# Up to this many titles matching every word are ranked in Python in one read;
# more, and each tier is asked of the index separately.
PROBE_ROWS = 64
# Typo matches join the results when the words as typed match fewer titles than this.
TYPO_THRESHOLD = 10


def tier_plain_limit(match: TextMatch, need: int) -> int:
    """The rows the last tier (every word) reads: need * (tiers + 1), at least
    TYPO_THRESHOLD, so a short last tier says its count is exact."""
    return max(need * (len(match.preferred) + 2), TYPO_THRESHOLD)


async def as_typed(
    pages: TextPages,
    db: Reader,
    match: TextMatch,
    filters: Filters,
    need: int,
    *,
    count: bool,
    sets: RankSets | None = None,
) -> tuple[list[int], dict[int, Row], dict[int, Assessment], int, bool]:
    """Tiers 1-3 as popularity ranks, hit rows already read (as (rank, *COLUMNS))
    and their assessments (by rank, when ranked in Python), and how many
    titles match the words as typed (exactly, or up to the cap). With
    ``sets``, the matches come from them and no row is read."""
    # Most known-item queries match a handful of titles: read them all in
    # one text query and sort them into tiers here, from their words.
    probe = max(need, PROBE_ROWS)
    if sets is not None:
        if len(sets.plain) <= probe:
            return _ranked_in_memory(pages, match, sets, filters)
        # The set is whole here: its first ranks are the last tier's best, as many
        # as it takes (so that tier is never read again, below).
        wanted = max(probe + 1, tier_plain_limit(match, need))
        found: list[Row] = [(rank,) for rank in sets.plain[:wanted].tolist()]
    else:
        found = await db.rows(*pages.rows_statement(match.plain, filters, probe + 1))
    if len(found) <= probe:
        # One pass, no copies: a row keeps its rank in front until it is on
        # the page (``_page_rows``); the order is (sort key, rank) tuples
        # sorted, not a key function per rank.
        assess = match.assess
        assessed: dict[int, Assessment] = {}
        rows: dict[int, Row] = {}
        order = []
        for row in found:
            rank = row[0]
            alternates = row[ALT_NORM_TITLES + 1]
            found_best = assess(
                [row[NORM_TITLE + 1], *alternates.split(JOINED_TITLES)]
                if alternates
                else (row[NORM_TITLE + 1],)
            )
            assessed[rank] = found_best
            rows[rank] = row
            order.append((found_best.sort_key, rank))
        order.sort()
        ranked = [rank for _, rank in order]
        return ranked, rows, assessed, *pages.statements.capped(len(found), filters)
    # Broad queries: each tier asks the index for its own best rows.
    tiers = [*match.preferred, match.plain]
    plain_limit = tier_plain_limit(match, need)
    # The last tier (every word) is the probe's rows when it read enough of
    # them (from the sets, always: they are whole): no second evaluation of the
    # broadest expression, and those rows' columns are known for the page.
    from_probe = sets is not None or _last_tier_from_probe(match, need, len(found))
    probe_rows = found
    in_memory = sets.tier_rows(need) if sets is not None and from_probe else None
    if in_memory is not None:
        found = in_memory
    else:
        found = await db.rows(*pages.tiers_statement(match, filters, need, from_probe=from_probe))
    known: dict[int, Row] = {}
    if from_probe:
        last = len(tiers)
        found += [(last, row[0], None) for row in probe_rows[:plain_limit]]
        if sets is None:
            known = {row[0]: row for row in probe_rows}  # (rank, *COLUMNS), as above
    # Tier, then (for exact titles) the words in the order typed, then popularity.
    found.sort(
        key=lambda row: (row[0], -match.order_score(row[2].split()) if row[2] else 0, row[1])
    )
    ranks: list[int] = []
    seen: set[int] = set()
    plain_rows = 0
    for tier, rank_of_row, _ in found:
        if tier == len(tiers):
            plain_rows += 1
        if rank_of_row not in seen:
            seen.add(rank_of_row)
            ranks.append(rank_of_row)
    if plain_rows < plain_limit:  # every match is here: the count is exact
        return ranks, known, {}, *pages.statements.capped(plain_rows, filters)
    if not count:
        return ranks, known, {}, plain_rows, False
    if sets is not None:
        return ranks, known, {}, *pages.statements.capped(len(sets.plain), filters)
    total, exact = await pages.statements.count(db, match.plain, filters)
    return ranks, known, {}, total, exact


def answered_from_sets(match: TextMatch, sets: RankSets, need: int) -> bool:
    """Whether ``as_typed`` reads nothing for ``match`` beyond ``sets``: a set small enough
    to rank whole, or a broad one whose tiers the postings find (``RankSets.tier_rows``;
    the last, every word, is the set's first ranks)."""
    return len(sets.plain) <= max(need, PROBE_ROWS) or sets.tier_rows(need) is not None


def _last_tier_from_probe(match: TextMatch, need: int, probe_rows: int) -> bool:
    """Whether the probe's ``probe_rows`` rows hold as many of the last tier (every
    word) as the tiers statement would read for it."""
    return tier_plain_limit(match, need) <= probe_rows


def _ranked_in_memory(
    pages: TextPages, match: TextMatch, sets: RankSets, filters: Filters
) -> tuple[list[int], dict[int, Row], dict[int, Assessment], int, bool]:
    """``as_typed`` for a small set from ``sets``: ranked from the titles in
    memory, as the probe's rows are; no row read (the page's are, later)."""
    assess = match.assess
    titles = sets.titles
    assessed: dict[int, Assessment] = {}
    order = []
    for rank in sets.plain.tolist():
        found_best = assess(titles(rank))
        assessed[rank] = found_best
        order.append((found_best.sort_key, rank))
    order.sort()
    ranked = [rank for _, rank in order]
    return ranked, {}, assessed, *pages.statements.capped(len(sets.plain), filters)
