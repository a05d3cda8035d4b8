"""A relevance page on PostgreSQL in one statement: one round trip per search.

The algorithm (``pages.py``) reads a page as a short conversation: the probe
(the first matches in popularity order), then, depending on what came back,
the tiers and a count (a broad query), or typo matches (fewer than
``TYPO_THRESHOLD`` titles), or a check that titles have every word typed.
On SQLite each read costs microseconds; on PostgreSQL each is a round trip
and a plan. So before the algorithm runs, the engine sends ONE statement
that answers every read the algorithm may ask next, each part guarded by
the answer it depends on (an uncommitted branch is an InitPlan that is false,
which PostgreSQL never executes), and the algorithm then reads through a
``ReplayReader`` that answers from those results. A read nobody foresaw goes
to the server: slower, never different.

It is also a rank-ordered candidate probe. The first ``L`` titles matching
every word, in popularity order (``p``), are read once: a common word walks
the popularity index and stops after ``L`` matches; a rarer one reads its GIN
matches, at most a few thousand (``L`` is the count cap + 1, so ``p`` also
answers the capped count). Every tier is a subset of those matches, so it is
a filter over ``p`` instead of its own walk or GIN scan: "story love" no
longer walks 438,451 titles for the phrase at the start of a title. Only a
tier that finds too few of its rows among the first ``L`` reads on, past
them, from the index.

The answers are keyed by the algorithm's own statements, built by its own
builders (``TextPages.rows_statement``, ``tiers_statement``,
``TextStatements.count_up_to_statement``, ``exists_statement``), so a change
of their text cannot desync the keys; a change of which reads the algorithm
makes, or of their limits, costs round trips (never answers) until this
statement follows: ``tests/search/test_postgres_round_trips.py`` holds a
plain search to one round trip, and checks that every answer equals the
statement's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelsearch.search.filters import Filters
from reelsearch.search.matching import TextMatch
from reelsearch.search.pages import PROBE_ROWS, TYPO_THRESHOLD, tier_plain_limit
from reelsearch.search.postgres_answers import (
    ALTERNATE,
    BEYOND_COUNT,
    COUNT,
    EXISTS,
    PAGE,
    PLAIN_COUNT,
    STRICT_COUNT,
    TIER,
    TITLED_HITS,
    TYPO,
    TYPO_COUNT,
    PageAnswers,
)
from reelsearch.search.postgres_reads import (
    START_KEY,
    WALK_MATCH,
    Cut,
    any_of,
    beyond_rows,
    cut_expressions,
    match_params,
    read_by,
    reads_beyond,
    start_range,
)
from reelsearch.search.rows import COLUMNS

# Ranks past the probe that a short phrase tier walks before asking GIN: at most this
# many titles read (a few milliseconds).
WINDOW = 20_000

# When the count is known, a walking p with preferred tiers reads this share of the cap + 1
# ("Episode #1.2" at 1 M: 250 matches walked instead of 1,001; the tiers' rows past them
# come from the window or GIN). A quarter, measured: p reading only the page's probe
# left the tiers so short that GIN read them at a larger cost ("Episode #1.1").
COUNTED_PROBE_SHARE = 4

# The hit columns by name, as they come out of the CTE ``p`` (COLUMNS less "m.").
_PLAIN_COLUMNS = ", ".join(column.strip()[2:] for column in COLUMNS.split(","))
_NULL_COLUMNS = ", ".join(["NULL"] * len(COLUMNS.split(",")))


class PageStatement(PageAnswers):
    """Builds the one statement for a relevance page; its rows as answers: ``PageAnswers``."""

    # How the probe (and the typo fetch) statements begin.
    PROBE_START = f"SELECT m.search_rank, {COLUMNS} FROM "

    def probe_limit(
        self,
        match: TextMatch,
        need: int,
        filters: Filters,
        *,
        broad: bool,
        counted: bool = False,
        walks: bool = False,
    ) -> int:
        """``L``: the probe's rows, or (broad) enough for every tier and the capped count.

        ``counted``: the count needs no rows of p (the vocabulary says the words
        match more than the cap, or the page is not counted). Then, with no
        preferred tiers, p reads only what the last tier needs; with some, whose
        rows p also holds, and p ``walks`` the rank index, it reads a
        ``COUNTED_PROBE_SHARE`` of the cap + 1: the tiers' rows past it come from
        the title-start index, the window or GIN, as when p is cut short anyway.
        A p read through GIN fetches every match whatever L is: it reads for the
        cap, and the tiers find their rows in it (docs/decisions/0035).
        """
        probe = max(need, PROBE_ROWS)
        if not broad:
            return probe + 1
        plain_limit = tier_plain_limit(match, need)
        if counted and not match.preferred:
            return max(probe + 1, plain_limit)
        for_count = self.statements.count_cap(filters) + 1
        if counted and walks:
            return max(probe + 1, plain_limit, for_count // COUNTED_PROBE_SHARE)
        return max(probe + 1, plain_limit, for_count)

    def build(
        self,
        match: TextMatch,
        filters: Filters,
        need: int,
        *,
        broad: bool,
        count: bool,
        cuts: Sequence[Cut] = (),
        walk: tuple[bool, bool] = (False, False),
        counted: bool = False,
        drivers: tuple[str | None, str | None] = (None, None),
        typos_counted: bool = False,
    ) -> tuple[str, list[Any], int]:
        """The statement, its parameters and ``L``, the matches ``p`` reads at most.

        ``broad``: the words may match more than the probe reads (so the tiers
        and the count may be asked); False when the vocabulary says they can't.
        ``cuts``: the matches of the query's first words that the algorithm
        tries, when no title has every word, to drop unmatched trailing ones.
        ``walk``: whether the matches as typed, and with typos, are common enough
        to read by walking the popularity index (else through the GIN index).
        ``counted``: the vocabulary says the words match more than the count cap
        (``probe_limit``). ``drivers``: for a match read through GIN (as typed, with
        typos), the part of it that GIN reads alone, each title it finds then tested
        against the whole match (``read_by``); None: GIN reads the whole match.
        ``typos_counted``: the vocabulary says the words with typos match more than
        the count cap, so no part counts them.
        Text and parameters are written side by side, in the order of the ``?``.
        """
        probe = max(need, PROBE_ROWS)
        tiers = [*match.preferred, match.plain]
        plain_limit = tier_plain_limit(match, need)
        cap = self.statements.count_cap(filters)
        limit = self.probe_limit(match, need, filters, broad=broad, counted=counted, walks=walk[0])
        typos, strict = match.with_typos, match.strict
        fsql, fp = filters.sql, filters.params
        on_p = "tsv @@ CAST(? AS tsquery)"
        plain_driver = None if walk[0] else drivers[0]
        typo_driver = None if walk[1] else drivers[1]
        plain_rows, plain_order = read_by(walk[0], plain_driver)
        typo_rows, typo_order = read_by(walk[1], typo_driver)
        gin_rows, gin_order = read_by(False)
        params: list[Any] = [*match_params(match.plain, plain_driver), *fp, limit]
        if broad:
            # p holds up to L matches: only what the tiers test; q the probe's columns.
            ctes = [
                "p AS MATERIALIZED (SELECT m.search_rank, m.title_tsv AS tsv "
                f"{plain_rows}{fsql} ORDER BY {plain_order} LIMIT ?)",
                "n AS (SELECT count(*)::int AS n FROM p)",
                f"q AS MATERIALIZED (SELECT {COLUMNS} FROM movies AS m WHERE m.search_rank IN "
                "(SELECT search_rank FROM p ORDER BY search_rank LIMIT ?))",
            ]
            params.append(probe + 1)
        else:
            ctes = [
                f"p AS MATERIALIZED (SELECT m.title_tsv AS tsv, {COLUMNS} "
                f"{plain_rows}{fsql} ORDER BY {plain_order} LIMIT ?)",
                "n AS (SELECT count(*)::int AS n FROM p)",
                f"q AS (SELECT {_PLAIN_COLUMNS} FROM p)",
            ]
        if broad:
            is_broad = "(SELECT n FROM n) > ?"
            # Tier 0 reads its own index (word_key), as the algorithm does.
            tier_sql = [
                "SELECT * FROM (SELECT 0 AS tier, m.search_rank AS r, m.norm_title AS norm "
                f"FROM movies AS m WHERE m.word_key = ?{fsql} AND {is_broad} "
                "ORDER BY m.search_rank LIMIT ?) AS t0"
            ]
            tier_params: list[Any] = [match.word_key, *fp, probe, need]
            preferred = tiers[:-1]
            # The start tier reads past p from the title-start index (us), the others
            # from u: the window, then GIN (``beyond``).
            start = start_range(match)
            beyond = preferred[1:] if start else preferred
            for tier, expression in enumerate(preferred, start=1):
                # Its first k rows among p, then (if p was cut short) among u or us.
                k = need * (tier + 1)
                tier_sql.append(
                    f"SELECT * FROM (SELECT {tier}, search_rank, NULL FROM p "
                    f"WHERE {on_p} AND {is_broad} ORDER BY search_rank LIMIT ?) AS t{tier}"
                )
                tier_params += [expression, probe, k]
                past = "us" if start and tier == 1 else "u"
                tier_sql.append(
                    f"SELECT * FROM (SELECT {tier}, search_rank, NULL FROM {past} "
                    f"WHERE {on_p} ORDER BY search_rank LIMIT ?) AS u{tier}"
                )
                tier_params += [expression, k]
            maxp = "(SELECT max(search_rank) FROM p)"
            cut_short = "(SELECT n FROM n) >= ?"
            in_p = f"(SELECT count(*) FROM (SELECT 1 FROM p WHERE {on_p} LIMIT ?) AS c)"
            if start:
                # Titles opening with the words typed, past p: a range of the index,
                # each rechecked against the tier (the range is a superset: a title
                # opening "of ice" or "of iceland" for 'of' <-> 'i':*). Read whole and
                # sorted ("+ 0": never by walking the rank index), at most k of them.
                k = need * 2
                ctes.append(
                    "us AS MATERIALIZED (SELECT m.search_rank, m.title_tsv AS tsv "
                    f"FROM movies AS m WHERE {START_KEY} >= ? AND {START_KEY} < ? "
                    f"AND m.search_rank + 0 > {maxp} AND {cut_short} AND {in_p} < ? "
                    f"AND ts_match_vq(m.title_tsv, CAST(? AS tsquery)){fsql} "
                    "ORDER BY m.search_rank + 0 LIMIT ?)"
                )
                params += [*start, limit, preferred[0], k, k, preferred[0], *fp, k]
            if beyond:
                # Past p, the titles of the preferred tiers that p holds too few of:
                # first by walking the next WINDOW ranks (a phrase one title in a
                # hundred among common words is found there), then, if some tier
                # is still short, through GIN ("+ 0": never by walking on).
                # The window is walked only when p's own density of a short tier says
                # the window fills it (wd: its width, 0 when not walked): else GIN
                # reads that tier anyway, and the walk was 10-30 ms for nothing at
                # 1 M titles ("of mi", "and: hi"); GIN then reads from p's end.
                first = 1 + len(preferred) - len(beyond)
                # k x maxp in bigint: a deep page's k (offset 10,000) times 1 M ranks
                # passes an integer's range.
                fills = f"{in_p} < ? AND {in_p} * ({maxp} + {WINDOW}) >= CAST(? AS bigint) * {maxp}"
                ctes.append(
                    f"wd AS (SELECT CASE WHEN {cut_short} AND ("
                    + " OR ".join(f"({fills})" for _ in beyond)
                    + f") THEN {WINDOW} ELSE 0 END AS w)"
                )
                params.append(limit)
                for tier, expression in enumerate(beyond, start=first):
                    k = need * (tier + 1)
                    params += [expression, k, k, expression, k, k]
                window = "(SELECT w FROM wd)"
                in_w = f"(SELECT count(*) FROM (SELECT 1 FROM uw WHERE {on_p} LIMIT ?) AS c)"
                ctes.append(
                    "uw AS MATERIALIZED (SELECT m.search_rank, m.title_tsv AS tsv FROM movies AS m "
                    f"WHERE m.search_rank > {maxp} AND m.search_rank <= {maxp} + {window} "
                    f"AND {WALK_MATCH}{fsql})"
                )
                params += [any_of(beyond), *fp]
                ctes.append(
                    "ug AS MATERIALIZED (SELECT m.search_rank, m.title_tsv AS tsv "
                    f"{gin_rows}{fsql} AND m.search_rank + 0 > {maxp} + {window} "
                    f"AND {cut_short} AND ("
                    + " OR ".join(f"{in_p} + {in_w} < ?" for _ in beyond)
                    + f") ORDER BY {gin_order} LIMIT ?)"
                )
                params += [any_of(beyond), *fp, limit]
                for tier, expression in enumerate(beyond, start=first):
                    k = need * (tier + 1)
                    params += [expression, k, expression, k, k]
                params.append(beyond_rows(limit))
                ctes.append("u AS (SELECT * FROM uw UNION ALL SELECT * FROM ug)")
            # The last tier is every word: p itself (its limit is within L).
            last = len(tiers)
            tier_sql.append(
                f"SELECT * FROM (SELECT {last}, search_rank, NULL FROM p "
                f"WHERE {is_broad} ORDER BY search_rank LIMIT ?) AS t{last}"
            )
            tier_params += [probe, plain_limit]
            ctes.append("t AS MATERIALIZED (" + " UNION ALL ".join(tier_sql) + ")")
            params += tier_params  # after u's: t follows u in the text
        if strict is not None:
            ctes.append(
                f"s AS (SELECT (SELECT count(*) FROM (SELECT 1 FROM p WHERE {on_p} "
                f"LIMIT {TYPO_THRESHOLD}) AS s) AS c WHERE (SELECT n FROM n) <= ?)"
            )
            params += [strict, probe]
        if typos is not None:
            # As the algorithm's fetch: enough to fill the page past the plain matches.
            ctes.append(
                f"k AS (SELECT greatest(greatest(? - n, 1), {PROBE_ROWS}) + n + 1 AS wanted FROM n)"
            )
            params.append(need)
            wanted = f"(SELECT n FROM n) < {TYPO_THRESHOLD}"
            if strict is not None:
                wanted = f"({wanted} OR (SELECT c FROM s) < {TYPO_THRESHOLD})"
            if count and not typos_counted:
                # The typo matches are read once for the page and their capped count:
                # their ranks up to the count (fr), then the page's columns by rank.
                # Reading them twice cost a second GIN read (docs/decisions/0032).
                ctes.append(
                    f"fr AS MATERIALIZED (SELECT m.search_rank AS r {typo_rows}{fsql} "
                    f"AND {wanted} ORDER BY {typo_order} LIMIT greatest(?, (SELECT wanted FROM k)))"
                )
                params += [*match_params(typos, typo_driver), *fp, cap + 1]
                ctes.append(
                    f"f AS MATERIALIZED (SELECT {COLUMNS} FROM movies AS m WHERE m.search_rank "
                    "IN (SELECT r FROM fr ORDER BY r LIMIT (SELECT wanted FROM k)))"
                )
            else:
                ctes.append(
                    f"f AS MATERIALIZED (SELECT {COLUMNS} {typo_rows}{fsql} "
                    f"AND {wanted} ORDER BY {typo_order} LIMIT (SELECT wanted FROM k))"
                )
                params += [*match_params(typos, typo_driver), *fp]
        # The hits that may be shown and have alternate titles: read once, by the last part.
        sources = ["SELECT id, alt_norm_titles FROM q"]
        if typos is not None:
            sources.append("SELECT id, alt_norm_titles FROM f")
        if broad:
            sources.append(
                "SELECT m.id, m.alt_norm_titles FROM movies AS m WHERE m.search_rank "
                "IN (SELECT r FROM t GROUP BY r ORDER BY min(tier), r LIMIT ?)"
            )
            params.append(need)
        ctes.append(
            "ht AS MATERIALIZED (SELECT DISTINCT id FROM (" + " UNION ALL ".join(sources) + ") "
            "AS h WHERE alt_norm_titles IS NOT NULL)"
        )
        parts = [
            "SELECT 0 AS part, NULL::int AS tier, NULL::text AS norm, NULL::bigint AS total, "
            f"{_PLAIN_COLUMNS} FROM q"
        ]
        if broad:
            # A tier row carries its rank where counts go.
            parts.append(f"SELECT {TIER}, tier, norm, r, {_NULL_COLUMNS} FROM t")
            # The hit columns of the page's ranks: the first `need` by (best tier, rank).
            parts.append(
                f"SELECT {PAGE}, NULL, NULL, NULL, {COLUMNS} FROM movies AS m "
                "WHERE m.search_rank IN (SELECT r FROM t GROUP BY r ORDER BY min(tier), r LIMIT ?)"
            )
            params.append(need)
        parts.append(f"SELECT {COUNT}, {PLAIN_COUNT}, NULL, n, {_NULL_COLUMNS} FROM n")
        if broad and reads_beyond(match):
            parts.append(f"SELECT {COUNT}, {BEYOND_COUNT}, NULL, count(*), {_NULL_COLUMNS} FROM ug")
        if strict is not None:
            parts.append(f"SELECT {COUNT}, {STRICT_COUNT}, NULL, c, {_NULL_COLUMNS} FROM s")
        if typos is not None:
            parts.append(f"SELECT {TYPO}, NULL, NULL, NULL, {_PLAIN_COLUMNS} FROM f")
            if count and not typos_counted:
                # Only when f was cut short: an aggregate answers 0 even over nothing.
                filled = "(SELECT count(*) FROM f) >= (SELECT wanted FROM k)"
                parts.append(
                    f"SELECT {COUNT}, {TYPO_COUNT}, NULL, c, {_NULL_COLUMNS} FROM "
                    f"(SELECT least(count(*), ?) AS c FROM fr) AS tc WHERE {filled}"
                )
                params.append(cap + 1)
        # The displayed alternate titles annotate may ask for: of every hit that may
        # be on the page and has some (``ht``, before the parts), if there are few.
        parts.append(
            f"SELECT {ALTERNATE}, NULL, title, movie_id, {_NULL_COLUMNS} FROM ("
            "SELECT movie_id, title FROM alt_titles WHERE movie_id IN (SELECT id FROM ht) "
            "UNION ALL SELECT id, original_title FROM movies WHERE id IN (SELECT id FROM ht) "
            "AND original_title IS NOT NULL ORDER BY 1, 2) AS a "
            f"WHERE (SELECT count(*) FROM ht) <= {TITLED_HITS}"
        )
        for index, (expression, walks) in enumerate(cut_expressions(cuts)):
            # A common cut walks to its first match; a rare one asks GIN.
            cut_rows, cut_order = read_by(walks)
            parts.append(
                f"SELECT {EXISTS}, {index}, NULL, (SELECT count(*) FROM (SELECT 1 {cut_rows}"
                f"{fsql} ORDER BY {cut_order} LIMIT 1) AS e), {_NULL_COLUMNS} "
                "WHERE (SELECT n FROM n) = 0"
            )
            params += [expression, *fp]
        return "WITH " + ", ".join(ctes) + " " + " UNION ALL ".join(parts), params, limit
