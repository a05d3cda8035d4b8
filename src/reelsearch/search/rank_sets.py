"""A search's match sets from the title postings: what FTS5 would answer to
``TextMatch``'s expressions, as sorted rank arrays.

``TextMatch`` writes each required slot as the OR of its alternatives'
phrases, ANDs the slots and takes the excluded words away (``plain``); the
typo expression adds each slot's typo candidates (``with_typos``); ``strict``
also requires the stop words. ``RankSets`` builds the same sets from the same
plan: a word is its postings, a prefix the union of its completions'
postings (or, for a short one, of every word it begins, as FTS5's prefix
index), words typed apart an intersection, and a phrase the intersection of
its words' titles kept where a title holds them side by side (read from the
titles in memory, each title on its own: FTS5's separator token keeps a
phrase from running from one title into the next).

A broad set's preferred tiers (``TextMatch.preferred``) are found here too, each
tier's best titles by walking the set best first (``tier_rows``).

Made per search, never kept: the sets are the search's own work, as FTS5's
evaluation was. Any part too broad to merge here cheaply (``None`` from
``TitlePostings.prefix``, phrases over too many titles) leaves the search to FTS5
(``RankSets.of`` answers None), or only its tiers (``tier_rows``) or strict set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from reelsearch.search.matching import (
    TIER_PHRASE,
    TIER_PHRASE_AT_START,
    TIER_STRICT,
    TIER_WHOLE_WORDS,
    TextMatch,
)
from reelsearch.search.normalize import word_key
from reelsearch.search.phrases import phrase_test
from reelsearch.search.plan import Alternative, Slot
from reelsearch.search.postings import (
    Ranks,
    TitlePostings,
    best_of,
    intersect,
    union,
    walk,
    without,
)
from reelsearch.search.readers import Row

# Titles tested for phrases, a search's phrases and its tiers' walks together, at most:
# past it FTS5 answers what was asked. Each is tested in Python (0.5-1 µs), where FTS5
# reads the positions in C: this bounds a search's tests here (no deadline check runs
# in them) at a millisecond or two.
MAX_PHRASE_CANDIDATES = 2_000


# Titles holding the word of an exact title (tier 0) whose primary title is exactly as
# long, checked one by one, at most: more (thousands of titles of one length holding
# one word, as a million titles may have) leave tier 0 to the index's word_key lookup.
MAX_EXACT_CANDIDATES = 2_000

# Leaves out of a sorted rank array the ranks the search's filters reject.
Keep = Callable[[Ranks], Ranks]

# A phrase tier's walk narrows its chunks by the last word's titles when it has at most
# this many completions (a union of their postings each); more are left to the test.
_UNION_OF_COMPLETIONS = 16

# Which set a slot's titles are for (``RankSets._slot``'s cache key): its phrases are
# tested only among the titles that set can hold (``RankSets._bound``). _UPPER: the
# slot's superset, no phrase tested; _UNBOUNDED: phrases tested among all titles.
_PLAIN, _WITH_TYPOS, _STRICT, _UPPER, _UNBOUNDED = 0, 1, 2, 3, 4
# A phrase with more candidates than this is tested only among its set's bound: fewer
# are tested at once (finding the bound costs an intersection per slot).
_BOUND_FROM = 64


class _TooBroad(Exception):
    """A part of the expression is cheaper for FTS5 than for the arrays."""


class RankSets:
    """The rank sets of one ``TextMatch`` over the catalog's postings."""

    __slots__ = (
        "_bounds", "_budget", "_candidates", "_excluded", "_keep", "_match", "_postings",
        "_slots", "_strict", "_with_typos", "plain", "titles",
    )  # fmt: skip

    def __init__(self, postings: TitlePostings, match: TextMatch, keep: Keep | None = None) -> None:
        self._postings = postings
        self._keep = keep  # the search's filters, tested on a set's ranks
        self.titles = postings.titles  # a rank's normalized titles, primary first
        self._match = match
        # A slot's set, by (id(slot), which bound its phrases were tested within).
        self._slots: dict[tuple[int, int], Ranks] = {}
        # An alternative's titles holding its tokens (side by side or not), by id.
        self._candidates: dict[int, tuple[Ranks, tuple[str, ...] | None]] = {}
        self._bounds: dict[int, Ranks | None] = {}  # by set (``_bound``)
        self._budget = MAX_PHRASE_CANDIDATES  # phrase candidates left to test
        self._with_typos: Ranks | None = None
        self._strict: Ranks | None | bool = False  # False: not computed yet
        plan = match.plan
        # Made here, so dropped from the id()-keyed cache before they are freed.
        excluded = [Alternative(words) for words in plan.excluded]
        self._excluded = union([self._alternative(alt, _UNBOUNDED)[0] for alt in excluded])
        for alt in excluded:
            del self._candidates[id(alt)]
        required = plan.required
        # With typos to come, phrases are tested within the typos' bound (it holds the
        # plain one) once, here: ``with_typos`` then tests none, so it cannot run out of
        # the budget after the search has taken the sets.
        tag = _PLAIN if match.with_typos is None else _WITH_TYPOS
        plain = intersect([self._slot(slot, tag) for slot in required])
        plain = without(plain, self._excluded)
        self.plain = plain if keep is None else keep(plain)

    @classmethod
    def of(
        cls, postings: TitlePostings | None, match: TextMatch, keep: Keep | None = None
    ) -> RankSets | None:
        """The sets of ``match`` (less the ranks ``keep``, the filters, leaves out), or
        None when the postings cannot answer it cheaply (or the catalog has none)."""
        if postings is None or not match.plan.required:
            return None
        try:
            return cls(postings, match, keep)
        except _TooBroad:
            return None

    def exact_rows(self, key: str, words: Sequence[str], limit: int) -> list[Row] | None:
        """Tier 0 as ``TextPages.tiers_statement`` reads it (``m.word_key = ?`` and the
        filters, in rank order, LIMIT ``limit``): the titles whose primary title's words
        are ``key`` (``normalize.word_key`` of ``words``), as (0, rank, primary title)
        rows; None when there are too many candidates to check here.

        Such a title holds every one of the words and its primary title is exactly as
        long as ``key``: the postings and the stored lengths narrow the candidates, the
        titles themselves decide."""
        if not words:  # no text search has none; the statement would read empty titles
            return None
        postings = self._postings
        # The rarest word's titles of the right length, then those holding the other
        # words: two broad words ("the", "a") cost more to intersect whole.
        arrays = sorted((postings.word(word) for word in set(words)), key=len)
        candidates = postings.primary_length_is(arrays[0], len(key.encode()))
        if len(arrays) > 1:
            candidates = intersect([candidates, *arrays[1:]])
        if self._keep is not None:
            candidates = self._keep(candidates)
        if len(candidates) > MAX_EXACT_CANDIDATES:
            return None
        rows: list[Row] = []
        for rank in candidates.tolist():
            primary = postings.titles(rank)[0]
            if word_key(primary) == key:
                rows.append((0, rank, primary))
                if len(rows) == limit:
                    break
        return rows

    def tier_rows(self, need: int) -> list[Row] | None:
        """Tiers 0 to k (the exact title, then the preferred tiers) as
        ``TextPages.tiers_statement`` reads them when the probe holds the last tier:
        each tier's best ``need * (tier + 1)`` titles by rank (tier 0's ``need``), as
        (tier, rank, primary title or None) rows; None when a part is too broad to
        find here (the statement reads them from the index).

        A phrase tier tests the titles holding its words, best first, until it has
        its rows: a broad one ("the b") most often stops within a few dozen."""
        match = self._match
        rows = self.exact_rows(match.word_key, match.words, need)
        if rows is None:
            return None
        kinds = match.preferred_kinds
        limits = {kind: need * (tier + 1) for tier, kind in enumerate(kinds, start=1)}
        try:
            # Both phrase tiers come together (a phrase at the start is one anywhere).
            phrases = (
                self._phrase_tiers(match.phrase, limits[TIER_PHRASE_AT_START], limits[TIER_PHRASE])
                if TIER_PHRASE_AT_START in limits
                else ([], [])
            )
            for tier, kind in enumerate(kinds, start=1):
                if kind == TIER_STRICT:  # plain titles holding the stop words too
                    optional = [self._slot(slot, _STRICT) for slot in _stop_slots(match)]
                    ranks = best_of(self.plain, optional, limits[kind])
                elif kind == TIER_WHOLE_WORDS:  # every word whole, side by side or not
                    # Not a subset of the plain titles: a quoted phrase's words apart too.
                    words = sorted(map(self._postings.word, set(match.words)), key=len)
                    ranks = best_of(words[0], words[1:], limits[kind], self._kept)
                elif kind == TIER_PHRASE_AT_START:
                    ranks = phrases[0]
                elif kind == TIER_PHRASE:
                    ranks = phrases[1]
                else:  # a kind this code does not know: the statement knows it
                    return None
                rows += [(tier, rank, None) for rank in ranks]
        except _TooBroad:
            return None
        return rows

    def _kept(self, ranks: Ranks) -> Ranks:
        """``ranks`` less the excluded titles and those the filters reject."""
        ranks = without(ranks, self._excluded)
        return ranks if self._keep is None else self._keep(ranks)

    def _phrase_tiers(
        self, phrase: Alternative, at_start: int, anywhere: int
    ) -> tuple[list[int], list[int]]:
        """The best ``at_start`` titles holding ``phrase``'s words side by side at the start
        of the primary title, and the best ``anywhere`` holding them anywhere, by rank;
        each title tested counts against the search's phrase budget.

        Such a title matches every word (``plain``, filters and excluded words
        applied), so only the plain titles holding every word of the phrase are tested
        (the last one's titles when they are at hand: a prefix too broad to merge is
        left to the test), best first, once for both tiers: a rare phrase in a broad set
        ("a my lo") tests few."""
        tokens = phrase.tokens
        last = tokens[-1]
        completions = self._match.vocabulary.completions(last) if phrase.prefix else None
        word = self._postings.word
        others = [word(token) for token in set(tokens[:-1])]
        if not phrase.prefix:
            others.append(word(last))
        elif completions is None:
            begun = self._postings.prefix(last)
            if begun is not None:
                others.append(begun)
        elif len(completions) <= _UNION_OF_COMPLETIONS:
            others.append(union([word(c) for c in completions or (last,)]))
        holds = phrase_test(tokens, phrase.prefix, completions)
        opens = phrase_test(tokens, phrase.prefix, completions, at_start=True)
        document = self._postings.document
        starting: list[int] = []
        holding: list[int] = []
        for chunk in walk(self.plain, others):
            ranks = chunk.tolist()
            self._budget -= len(ranks)
            if self._budget < 0:
                raise _TooBroad(" ".join(tokens))
            for rank in ranks:
                text = document(rank)
                if not holds(text):
                    continue
                if len(holding) < anywhere:
                    holding.append(rank)
                if len(starting) < at_start and opens(text):
                    starting.append(rank)
                if len(holding) == anywhere and len(starting) == at_start:
                    return starting, holding
        return starting, holding

    def titles_of_row(self, row: Sequence[int]) -> list[str]:
        """The titles of a (rank,) row, as ``pages`` holds matches read from here."""
        return self._postings.titles(row[0])

    @property
    def with_typos(self) -> Ranks:
        """``TextMatch.with_typos``'s titles (ask only when that is not None)."""
        if self._with_typos is None:
            word = self._postings.word
            groups = [
                union([self._slot(slot, _WITH_TYPOS), *(word(c) for c in self._typos_of(slot))])
                for slot in self._match.plan.required
            ]
            with_typos = without(intersect(groups), self._excluded)
            keep = self._keep
            self._with_typos = with_typos if keep is None else keep(with_typos)
        return self._with_typos

    @property
    def strict(self) -> Ranks | None:
        """``TextMatch.strict``'s titles (ask only when that is not None); None when
        its stop words are too broad to merge here."""
        if self._strict is False:
            try:
                # Strict titles are plain ones: phrases are tested among those alone.
                optional = [self._slot(slot, _STRICT) for slot in _stop_slots(self._match)]
                self._strict = without(intersect([self.plain, *optional]), self._excluded)
            except _TooBroad:
                self._strict = None
        return self._strict  # type: ignore[return-value]

    def _slot(self, slot: Slot, tag: int) -> Ranks:
        """The titles holding ``slot``, for the set ``tag`` names: a phrase of it may be
        tested only among the titles that set can hold (``_bound``). Found once for every
        set when no phrase of it was bounded (the whole slot, right for any set)."""
        if not _has_phrase(slot):
            return self._upper(slot)  # the same set, whatever the bound
        whole = (id(slot), _UNBOUNDED)
        found = self._slots.get(whole)
        if found is None:
            found = self._slots.get((id(slot), tag))
        if found is None:
            parts = [self._alternative(alt, tag) for alt in slot.alternatives]
            found = union([ranks for ranks, _ in parts])
            bounded = any(was_bounded for _, was_bounded in parts)
            self._slots[(id(slot), tag) if bounded else whole] = found
        return found

    def _upper(self, slot: Slot) -> Ranks:
        """The titles holding the tokens of one of ``slot``'s alternatives, side by side
        or not: the slot's titles, or a superset when it has a phrase (not tested here)."""
        key = (id(slot), _UPPER)
        found = self._slots.get(key)
        if found is None:
            found = union([self._tokens_anywhere(alt)[0] for alt in slot.alternatives])
            self._slots[key] = found
        return found

    def _typos_of(self, slot: Slot) -> tuple[str, ...]:
        """The typo candidates that may stand in for ``slot``'s word (none if it has none)."""
        return self._match.typos.candidates(slot.words[0]) if slot.typos else ()

    def _bound(self, tag: int) -> Ranks | None:
        """The titles the set ``tag`` names can hold, found without testing a phrase (the
        intersection of its slots' supersets; the plain set for the strict one; None for
        one slot): a slot's phrase needs testing only among them ("i i" of "ii": every
        title with an "i"; with "edward", a handful). Found once per set, when a phrase
        has more candidates than ``_BOUND_FROM``."""
        if tag in self._bounds:
            return self._bounds[tag]
        required = self._match.plan.required
        bound: Ranks | None = None
        if tag == _STRICT:  # strict titles are plain ones
            bound = self.plain
        elif len(required) > 1:
            uppers = [self._upper(slot) for slot in required]
            if tag == _WITH_TYPOS:
                word = self._postings.word
                uppers = [union([upper, *map(word, self._typos_of(slot))])
                          for slot, upper in zip(required, uppers, strict=True)]  # fmt: skip
            bound = intersect(uppers)
        self._bounds[tag] = bound
        return bound

    def _tokens_anywhere(self, alternative: Alternative) -> tuple[Ranks, tuple[str, ...] | None]:
        """The titles holding every token of ``alternative`` (its last one as a prefix
        when it is one), and the completions of that prefix (None: FTS5's "last"*)."""
        key = id(alternative)
        known = self._candidates.get(key)
        if known is not None:
            return known
        tokens = alternative.tokens
        word = self._postings.word
        last = tokens[-1]
        completions: tuple[str, ...] | None = None
        if alternative.prefix:
            completions = self._match.vocabulary.completions(last)
            if completions is None:  # FTS5's "last"*
                found = self._postings.prefix(last)
                if found is None:
                    raise _TooBroad(last)
                lasts = found
            else:
                lasts = union([word(c) for c in completions or (last,)])
        else:
            lasts = word(last)
        if len(tokens) == 1:
            known = (lasts, completions)
        else:
            known = (intersect([*(word(t) for t in tokens[:-1]), lasts]), completions)
        self._candidates[key] = known
        return known

    def _alternative(self, alternative: Alternative, tag: int) -> tuple[Ranks, bool]:
        """The titles holding one alternative, as ``TextMatch._phrases`` writes it, and
        whether they were bounded: a phrase with many candidates is tested only on the
        titles the set ``tag`` can hold (``_bound``)."""
        candidates, completions = self._tokens_anywhere(alternative)
        tokens = alternative.tokens
        if len(tokens) == 1 or not alternative.adjacent or not len(candidates):
            return candidates, False
        bounded = False
        if len(candidates) > _BOUND_FROM and tag != _UNBOUNDED:
            bound = self._bound(tag)
            if bound is not None:
                candidates = intersect([candidates, bound])
                bounded = True
        self._budget -= len(candidates)
        if self._budget < 0:
            raise _TooBroad(" ".join(tokens))
        holds = phrase_test(tokens, alternative.prefix, completions)
        document = self._postings.document
        kept = [rank for rank in candidates.tolist() if holds(document(rank))]
        return np.array(kept, dtype=np.int32), bounded


def _stop_slots(match: TextMatch) -> list[Slot]:
    """The slots the strict set requires beyond the plain one's: the optional words
    (stop words), not a year."""
    return [slot for slot in match.plan.slots if slot.optional and not slot.is_year]


def _has_phrase(slot: Slot) -> bool:
    """Whether an alternative of ``slot`` is words side by side (tested in the titles)."""
    return any(alt.adjacent and len(alt.tokens) > 1 for alt in slot.alternatives)
