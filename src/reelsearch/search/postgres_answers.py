"""The one statement's rows as the answers to the reads a PostgreSQL page's algorithm makes.

``postgres_page.py`` writes one statement whose parts answer every read the
algorithm (``pages.py``) may make; each row says which part it is (``PROBE``,
``TIER``...). ``PageAnswers`` turns those rows into ``Answers`` keyed by the
algorithm's own statements, built by its own builders
(``TextPages.rows_statement``, ``tiers_statement``,
``TextStatements.count_up_to_statement``, ``exists_statement``), so a change of
their text cannot desync the keys (docs/decisions/0018).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelsearch.search.filters import Filters
from reelsearch.search.matching import TextMatch
from reelsearch.search.pages import PROBE_ROWS, TYPO_THRESHOLD, TextPages, tier_plain_limit
from reelsearch.search.postgres_reads import Cut, beyond_rows, cut_expressions, start_range
from reelsearch.search.postgres_replay import Answers, Statement
from reelsearch.search.readers import Row
from reelsearch.search.rows import ALT_NORM_TITLES, SEARCH_RANK

# The most hits with alternate titles whose titles the statement reads for annotate.
TITLED_HITS = 24

# Result parts: the rows of one statement say which read they answer.
PROBE, TIER, PAGE, COUNT, TYPO, EXISTS, ALTERNATE = range(7)
# Counts, by the ``tier`` column of a COUNT row.
PLAIN_COUNT, STRICT_COUNT, TYPO_COUNT, BEYOND_COUNT = range(4)


class PageAnswers:
    """The answers' keys (the algorithm's own statements), and the rows as answers."""

    def __init__(self, pages: TextPages) -> None:
        self.pages = pages
        self.statements = pages.statements

    def probe(self, expression: str, filters: Filters, limit: int) -> Statement:
        return self.pages.rows_statement(expression, filters, limit)

    def count_up_to(self, expression: str, filters: Filters, limit: int) -> Statement:
        return self.statements.count_up_to_statement(expression, filters, limit)

    def exists(self, expression: str, filters: Filters) -> Statement:
        return self.statements.exists_statement(expression, filters)

    def tiers(
        self, match: TextMatch, filters: Filters, need: int, *, from_probe: bool
    ) -> Statement:
        return self.pages.tiers_statement(match, filters, need, from_probe=from_probe)

    def answers(
        self,
        match: TextMatch,
        filters: Filters,
        need: int,
        limit: int,
        found: Sequence[Row],
        *,
        broad: bool,
        cuts: Sequence[Cut] = (),
        beyond_cap: bool = False,
        typos_beyond_cap: bool = False,
    ) -> Answers:
        """The statement's rows as the answers to the reads the algorithm will make.

        ``beyond_cap``: the vocabulary says the words match more than the count
        cap, so the capped count is known without p reading that far;
        ``typos_beyond_cap``, the same of the words with typos.
        """
        probe = max(need, PROBE_ROWS)
        parts: list[list[Row]] = [[] for _ in range(TYPO + 1)]
        counts: dict[int, int] = {}
        exists: dict[int, bool] = {}
        answers_titles: list[Row] = []
        for row in found:
            part = row[0]
            if part == COUNT:
                counts[row[1]] = int(row[3])
            elif part == EXISTS:
                exists[row[1]] = bool(row[3])
            elif part == ALTERNATE:
                answers_titles.append((row[3], row[2]))
            else:
                parts[part].append(row)
        answers = Answers()
        known = answers.by_statement
        n = counts[PLAIN_COUNT]  # min(matches, limit)
        # In popularity order, as the statements return them (the parts are sets).
        probe_rows: list[Row] = sorted(
            ((row[4 + SEARCH_RANK], *row[4:]) for row in parts[PROBE]), key=_first
        )
        known[self.probe(match.plain, filters, probe + 1)] = probe_rows
        known[self.exists(match.plain, filters)] = [(1,)] if n else []
        if broad and n > probe:
            tiers = [*match.preferred, match.plain]
            plain_limit = tier_plain_limit(match, need)
            # As the algorithm decides: the probe read probe + 1 rows (n > probe), and
            # when they hold the last tier, the tiers statement leaves it out.
            from_probe = plain_limit <= probe + 1
            asked = len(tiers) - 1 if from_probe else len(tiers)
            by_tier: dict[int, list[Row]] = {}
            for row in parts[TIER]:
                if row[1] <= asked:
                    by_tier.setdefault(row[1], []).append((row[1], row[3], row[2]))
            tier_rows: list[Row] = []
            whole = True
            # us reads every title opening with the words past p, up to k: never cut.
            from_start = start_range(match) is not None
            for tier, rows in sorted(by_tier.items()):
                k = need if tier == 0 else plain_limit if tier == len(tiers) else need * (tier + 1)
                tier_rows += sorted(rows, key=lambda row: row[1])[:k]
                # A tier short of k rows in p and in u is all there is, unless u was cut.
                whole = whole and (
                    len(rows) >= k
                    or (from_start and tier == 1)
                    or counts.get(BEYOND_COUNT, 0) < beyond_rows(limit)
                )
            if whole:
                known[self.tiers(match, filters, need, from_probe=from_probe)] = tier_rows
            answers.rows_by_rank = {row[4 + SEARCH_RANK]: tuple(row[4:]) for row in parts[PAGE]}
            cap = self.statements.count_cap(filters)
            if limit > cap:  # p read past the cap: its size is the capped count
                known[self.count_up_to(match.plain, filters, cap + 1)] = [(min(n, cap + 1),)]
            elif beyond_cap:
                known[self.count_up_to(match.plain, filters, cap + 1)] = [(cap + 1,)]
        strict_count = counts.get(STRICT_COUNT)
        if match.strict is not None and strict_count is not None:
            known[self.count_up_to(match.strict, filters, TYPO_THRESHOLD)] = [(strict_count,)]
        typos = match.with_typos
        if typos is not None and (
            n < TYPO_THRESHOLD or (strict_count is not None and strict_count < TYPO_THRESHOLD)
        ):
            typo_rows: list[Row] = sorted(
                ((row[4 + SEARCH_RANK], *row[4:]) for row in parts[TYPO]), key=_first
            )
            fetch = max(max(need - n, 1), PROBE_ROWS) + n + 1
            known[self.probe(typos, filters, fetch)] = typo_rows
            if n == 0:  # the one check of "with typos" the words take before typo matches
                known[self.exists(typos, filters)] = [(1,)] if typo_rows else []
            cap = self.statements.count_cap(filters)
            if TYPO_COUNT in counts:
                known[self.count_up_to(typos, filters, cap + 1)] = [(counts[TYPO_COUNT],)]
            elif typos_beyond_cap:
                known[self.count_up_to(typos, filters, cap + 1)] = [(cap + 1,)]
        for index, (expression, _) in enumerate(cut_expressions(cuts)):
            if index in exists:
                known[self.exists(expression, filters)] = [(1,)] if exists[index] else []
        # As the statement chose them: the hits that may be shown, with alternate titles.
        hits = [*parts[PROBE][: probe + 1], *parts[TYPO], *parts[PAGE]]
        titled = frozenset(row[4] for row in hits if row[4 + ALT_NORM_TITLES] is not None)
        if len(titled) <= TITLED_HITS:
            answers.titles, answers.titled = answers_titles, titled
        return answers


def _first(row: Row) -> Any:
    return row[0]
