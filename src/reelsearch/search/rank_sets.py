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

Made per search, never kept: the sets are the search's own work, as FTS5's
evaluation was. Any part too broad to merge here cheaply (``None`` from
``TitlePostings.prefix``, a phrase over too many titles) leaves the whole
search to FTS5 (``RankSets.of`` answers None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from reelsearch.search.matching import TextMatch
from reelsearch.search.normalize import word_key
from reelsearch.search.plan import Alternative, Slot
from reelsearch.search.postings import EMPTY, Ranks, TitlePostings, sorted_unique, without
from reelsearch.search.readers import Row

# Phrases whose words share more titles than this, all phrases of a search
# together, leave the search to FTS5: each title is tested in Python (about
# 0.5 µs), where FTS5 reads the positions in C. This bounds a search's work
# here (no deadline check runs in it) at about a millisecond.
MAX_PHRASE_CANDIDATES = 2_000


# Titles holding the word of an exact title (tier 0) whose primary title is exactly as
# long, checked one by one, at most: more (thousands of titles of one length holding
# one word, as a million titles may have) leave tier 0 to the index's word_key lookup.
MAX_EXACT_CANDIDATES = 2_000

# Leaves out of a sorted rank array the ranks the search's filters reject.
Keep = Callable[[Ranks], Ranks]


class _TooBroad(Exception):
    """A part of the expression is cheaper for FTS5 than for the arrays."""


def intersect(sets: Sequence[Ranks]) -> Ranks:
    """The ranks in every one of ``sets`` (each sorted, no repeats), ascending."""
    ordered = sorted(sets, key=len)
    result = ordered[0]
    for other in ordered[1:]:
        if not len(result):
            break
        if not len(other):
            return EMPTY
        at = np.searchsorted(other, result)
        at[at == len(other)] = 0
        result = result[other[at] == result]
    return result


def union(sets: Sequence[Ranks]) -> Ranks:
    """The ranks in any one of ``sets``, ascending, no repeats."""
    present = [ranks for ranks in sets if len(ranks)]
    if not present:
        return EMPTY
    if len(present) == 1:
        return present[0]
    return sorted_unique(np.concatenate(present))


class RankSets:
    """The rank sets of one ``TextMatch`` over the catalog's postings."""

    __slots__ = (
        "_budget", "_excluded", "_keep", "_match", "_postings", "_slots", "_strict",
        "_with_typos", "plain", "titles",
    )  # fmt: skip

    def __init__(self, postings: TitlePostings, match: TextMatch, keep: Keep | None = None) -> None:
        self._postings = postings
        self._keep = keep  # the search's filters, tested on a set's ranks
        self.titles = postings.titles  # a rank's normalized titles, primary first
        self._match = match
        self._slots: dict[int, Ranks] = {}
        self._budget = MAX_PHRASE_CANDIDATES  # phrase candidates left to test
        self._with_typos: Ranks | None = None
        self._strict: Ranks | None | bool = False  # False: not computed yet
        plan = match.plan
        self._excluded = (
            union([self._alternative(Alternative(words)) for words in plan.excluded])
            if plan.excluded
            else EMPTY
        )
        required = [self._slot(slot) for slot in plan.required]
        plain = without(intersect(required), self._excluded)
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
        candidates = intersect([postings.word(word) for word in set(words)])
        candidates = postings.primary_length_is(candidates, len(key.encode()))
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

    def titles_of_row(self, row: Sequence[int]) -> list[str]:
        """The titles of a (rank,) row, as ``pages`` holds matches read from here."""
        return self._postings.titles(row[0])

    @property
    def with_typos(self) -> Ranks:
        """``TextMatch.with_typos``'s titles (ask only when that is not None)."""
        if self._with_typos is None:
            typos = self._match.typos
            word = self._postings.word
            groups = [
                union([self._slot(slot), *(word(c) for c in typos.candidates(slot.words[0]))])
                if slot.typos
                else self._slot(slot)
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
            plan = self._match.plan
            try:
                optional = [
                    self._slot(slot) for slot in plan.slots if slot.optional and not slot.is_year
                ]
                self._strict = without(intersect([self.plain, *optional]), self._excluded)
            except _TooBroad:
                self._strict = None
        return self._strict  # type: ignore[return-value]

    def _slot(self, slot: Slot) -> Ranks:
        found = self._slots.get(id(slot))
        if found is None:
            found = union([self._alternative(alt) for alt in slot.alternatives])
            self._slots[id(slot)] = found
        return found

    def _alternative(self, alternative: Alternative) -> Ranks:
        """The titles holding one alternative, as ``TextMatch._phrases`` writes it."""
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
            return lasts
        candidates = intersect([*(word(t) for t in tokens[:-1]), lasts])
        if not alternative.adjacent or not len(candidates):
            return candidates
        self._budget -= len(candidates)
        if self._budget < 0:
            raise _TooBroad(" ".join(tokens))
        # The document's words are single-spaced and its titles apart by " \ue000 "
        # (a token no phrase holds), so words side by side are a substring of the
        # document in spaces: one C search, not a scan of its words.
        head = " " + " ".join(tokens[:-1]) + " "
        document = self._postings.document
        ranks = candidates.tolist()
        if not alternative.prefix or completions is None:  # the last word whole, or begun
            phrase = head + last + (" " if not alternative.prefix else "")
            kept = [rank for rank in ranks if phrase in " " + document(rank) + " "]
        else:
            fits = frozenset(completions or (last,)).__contains__
            kept = [rank for rank in ranks if _holds_phrase(document(rank), head, fits)]
        return np.array(kept, dtype=np.int32)


def _holds_phrase(document: str, head: str, fits: Callable[[str], bool]) -> bool:
    """Whether ``document`` holds the words of ``head`` (" w1 w2 ") side by side, then a
    word that ``fits``."""
    padded = " " + document + " "
    start = padded.find(head)
    while start >= 0:
        after = start + len(head)
        end = padded.find(" ", after)  # -1: the head ends the document
        if end > after and fits(padded[after:end]):
            return True
        start = padded.find(head, start + 1)
    return False
