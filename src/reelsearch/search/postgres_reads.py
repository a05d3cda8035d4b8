"""How the one statement of a PostgreSQL page reads a match: the SQL of each way.

A match is read walking the popularity index (a function no index serves, in
rank order, stopping at the LIMIT) or through GIN (the operator, sorted by an
expression no index has), maybe with a driver: the part GIN reads alone, each
title then tested against the whole match. The title-start index
(``START_KEY``, migration 0006) holds the titles opening with the words typed.
``postgres_page.py`` writes the statement from these pieces; the walk-or-GIN
choice is ``postgres_estimates.py``'s (docs/decisions/0018, 0025, 0026).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reelsearch.search.matching import TextMatch

# The least ``beyond_rows``: L for the default count cap (1,000) + 1.
BEYOND_ROWS = 1001

# The title-start index's key (migration 0006): norm_title in byte order.
START_KEY = '(m.norm_title COLLATE "C")'


@dataclass(frozen=True, slots=True)
class Cut:
    """The first words of a query, as the algorithm may try them, and how to read them."""

    match: TextMatch
    walk: tuple[bool, bool]  # as typed, with typos: walk the rank index (else GIN)


def start_range(match: TextMatch) -> tuple[str, str] | None:
    """The range of ``START_KEY`` that holds every title opening with the words typed
    (the first preferred tier, ``'^' <-> w1 <-> ... <-> wn``, the last maybe a
    prefix or one of its completions), or None when the match has no such tier.

    ``norm_title``'s words are the tsvector's from position 2, one space apart
    (``normalize``), and C collation orders by code point, so the titles
    beginning with "w1 ... wn" lie between that text and that text followed by
    U+10FFFF (which ``normalize`` never leaves in a title).
    """
    if len(match.words) < 2:
        return None
    opening = " ".join(match.words)
    return opening, opening + "\U0010ffff"


def reads_beyond(match: TextMatch) -> bool:
    """Whether some preferred tier reads past p through the window and GIN (u)."""
    preferred = len(match.preferred)
    return preferred > (1 if start_range(match) else 0)


def beyond_rows(limit: int) -> int:
    """The rows ``ug`` (GIN past the window) keeps in rank order: at least
    ``BEYOND_ROWS`` whatever ``L`` is.

    A tier short of its rows in p and u is all there is only when ug was not cut
    (``PageAnswers.answers``); else the algorithm reads the tiers again from the
    server. GIN has fetched every title by then, so keeping up to the unfiltered
    cap's L of them in the sort costs little, where an L of a few hundred (a
    filter's cap, a counted p: ``PageStatement.probe_limit``) would cut ug and
    cost a second statement.
    """
    return max(limit, BEYOND_ROWS)


def read_by(walk: bool, driver: str | None = None) -> tuple[str, str]:
    """The matching rows (``FROM ... WHERE <match>``, the filters to follow) and their
    order, written to leave PostgreSQL one way to read them.

    With a ``driver`` (GIN only), GIN reads the driver's titles and each is tested
    against the whole match by a function no index serves: exact whatever the
    driver, as the driver matches every title the whole match does. GIN cannot
    skip through a prefix of one or two letters ('n':* reads every word starting
    with "n", 20-50 ms at 1 M titles), so "lives n" is cheaper read as the few
    titles with "lives", each tested for 'n':*. Parameters: ``match_params``.

    The tsquery is hidden from the planner either way: estimating it against
    the title column's 1,000 most common words took 1-2 ms per statement,
    more than running it. Walking: a function call no index serves, in
    popularity order (the rank index, stopping at the LIMIT). Through GIN: the
    operator, sorted by an expression no index has (so never by walking), in a
    subquery the filters cannot reach (``OFFSET 0``): else the generic plan
    (0022), which guesses a year range or a kind keeps 0.5% of the catalog,
    ANDs GIN's bitmap with one read from the filter's own index, which holds
    thousands of titles where GIN's matches are few (docs/decisions/0026).
    """
    if walk:
        return f"FROM movies AS m WHERE {WALK_MATCH}", "m.search_rank"
    if driver is not None:
        return f"{GIN_ROWS} AND {WALK_MATCH}", "m.search_rank + 0"
    return GIN_ROWS, "m.search_rank + 0"


# The walking match, and the rows matching through GIN alone (filters apply to them after;
# with a driver, GIN reads the driver's titles and the whole match is tested on them).
WALK_MATCH = "ts_match_vq(m.title_tsv, CAST(? AS tsquery))"
GIN_ROWS = (
    "FROM (SELECT * FROM movies AS m WHERE m.title_tsv @@ (SELECT CAST(? AS tsquery)) "
    "OFFSET 0) AS m WHERE TRUE"
)


def match_params(expression: str, driver: str | None) -> list[str]:
    """The parameters of ``read_by``'s condition, in the order of its ``?``."""
    return [expression] if driver is None else [driver, expression]


def any_of(expressions: Sequence[str]) -> str:
    """tsquery: titles matching any of the expressions."""
    return "(" + ") | (".join(expressions) + ")"


def cut_expressions(cuts: Sequence[Cut]) -> list[tuple[str, bool]]:
    """Each cut's expressions, as typed and with typos, in the statement's order,
    with whether to walk the rank index for it."""
    expressions: list[tuple[str, bool]] = []
    for cut in cuts:
        expressions.append((cut.match.plain, cut.walk[0]))
        if cut.match.with_typos is not None:
            expressions.append((cut.match.with_typos, cut.walk[1]))
    return expressions
