"""Ranking a title known to match: the tiers, the ``Assessment`` of a title, and
the tests a plan's slots make of a title's words.

``TextMatch.assess`` (matching.py) ranks a small match set with these, without
one index read per tier; the same tests find a hit's highlights and explain
its rank.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelsearch.search.normalize import JOINED_TITLES
from reelsearch.search.plan import Alternative, Slot

# Tiers, best first. A hit's tier is the first that its best title reaches.
EXACT, AT_START, ADJACENT, WHOLE_LAST_WORD, ALL_WORDS, WITH_TYPOS = range(6)
TIER_NAMES = (
    "exact title",
    "words side by side at the start",
    "words side by side",
    "last word whole",
    "every word",
    "every word, some with typos",
)


@dataclass(slots=True, init=False)
class Assessment:
    """Why a matching movie ranks where it does: its best title and how well it matches.

    Not frozen, though never changed once made: a frozen dataclass sets each
    field through ``object.__setattr__``, a sixth of assessing a title.
    """

    tier: int
    absent: int  # required words this title lacks (the movie matched through another)
    missing: int  # stop words of the query the title lacks
    order: int  # neighbouring query words that are neighbours in the title too
    typos: int  # query words matched only through a typo
    title_index: int  # 0: the primary title, n: the n-th alternate title
    respaced: int  # words matched only split or joined ("braindead" in Brain Dead)
    extra: int  # title words beyond the ones matched
    sort_key: tuple[int, int, int, int, int, int]

    def __init__(
        self,
        tier: int,
        absent: int,
        missing: int,
        order: int,
        typos: int,
        title_index: int,
        respaced: int = 0,
        extra: int = 0,
    ) -> None:
        self.tier = tier
        self.absent = absent
        self.missing = missing
        self.order = order
        self.typos = typos
        self.title_index = title_index
        self.respaced = respaced
        self.extra = extra
        # Lower ranks first; popularity breaks the ties. Made here, in the one
        # call that makes the assessment: a property built the tuple again each
        # time a sort or the comparison of a movie's titles read it.
        #
        # A title with every stop word typed before one without ("la pete": La
        # Peste, even through a typo, before Peter Pan); then the tier; then
        # words as typed before words split or joined ("braindead": Braindead,
        # then Brain Dead, both exact titles). Word order counts among exact
        # titles only ("18 5 episode"), and among typo matches a title of just
        # the corrected words goes first ("the barin": The Brain before The
        # Brain That Wouldn't Die); elsewhere popularity decides.
        if tier == EXACT:
            within = -order
        elif tier == WITH_TYPOS:
            within = int(extra > 0)
        else:
            within = 0
        self.sort_key = (absent, missing, tier, respaced, typos, within)


def titles_of(norm_title: str, alt_norm_titles: str | None) -> list[str]:
    """A movie's normalized titles, primary first, as the title index holds them."""
    return [norm_title, *alt_norm_titles.split(JOINED_TITLES)] if alt_norm_titles else [norm_title]


class SlotTest:
    """One slot of a plan, laid out for testing titles against it quickly.

    ``present`` finds the longest of the slot's alternatives that a title holds
    side by side, so "mi" in Mission: Impossible is its synonym "mission
    impossible" (an exact title) rather than the prefix of one word. The
    alternatives are tried longest first (the first one in the plan's order
    among equally long ones, as a scan keeping the longest found would pick),
    so the first one found is the answer. Built once per plan (``TextMatch``
    is kept per plan), used for every title ranked.
    """

    __slots__ = ("counts_missing", "optional", "slot", "tests", "typed")

    def __init__(self, slot: Slot) -> None:
        self.slot = slot
        self.typed = slot.typed
        self.optional = slot.optional
        self.counts_missing = int(not slot.is_year)
        ordered = sorted(slot.alternatives, key=lambda alternative: -len(alternative.tokens))
        # (alternative, kind, what to look for): kind 0 a whole word, 1 a word's
        # start (" " + prefix in " " + title), 2 several words.
        self.tests = tuple(
            (alternative, 0, alternative.tokens[0])
            if len(alternative.tokens) == 1 and not alternative.prefix
            else (alternative, 1, " " + alternative.tokens[0])
            if len(alternative.tokens) == 1
            else (alternative, 2, "")
            for alternative in ordered
        )

    def present(self, title_words: list[str], present: set[str], spaced: str) -> Alternative | None:
        """The longest alternative the title holds (``present`` is the set of
        ``title_words``; ``spaced`` the normalized title after a space: a word of
        it starts with a prefix when " " + prefix is in it, one substring search
        in C)."""
        for alternative, kind, look_for in self.tests:
            if kind == 0:
                if look_for in present:
                    return alternative
            elif kind == 1:
                if look_for in spaced:
                    return alternative
            elif _holds(alternative, title_words, present):
                return alternative
        return None


def _holds(alternative: Alternative, title_words: list[str], present: set[str]) -> bool:
    """Whether a title holds an alternative of several words (side by side if it must)."""
    tokens = alternative.tokens
    if tokens[0] not in present:
        return False
    n = len(tokens)
    if not alternative.adjacent:
        return all(t in present for t in tokens[:-1]) and any(
            _fits(word, alternative) for word in title_words
        )
    head = list(tokens[:-1])
    return any(
        title_words[start : start + n - 1] == head
        and _fits(title_words[start + n - 1], alternative)
        for start in range(len(title_words) - n + 1)
    )


def matched_words_of(
    alternative: Alternative, title_words: list[str], present: set[str]
) -> set[str]:
    """The title's words that the alternative's tokens are (its last one completed, if typed so)."""
    tokens = alternative.tokens
    last = tokens[-1]
    if alternative.prefix:
        found = {word for word in title_words if word.startswith(last)}
    else:
        found = {last} if last in present else set()
    if len(tokens) > 1:
        found.update(token for token in tokens[:-1] if token in present)
    return found


def _fits(title_word: str, alternative: Alternative) -> bool:
    """Whether a title word is the alternative's last token (or completes it, while typed)."""
    last = alternative.tokens[-1]
    return title_word.startswith(last) if alternative.prefix else title_word == last


def order_score(title_words: list[str], words: list[str]) -> int:
    """How closely a title with the query's words keeps their order.

    The title as typed scores highest; otherwise one point per pair of
    neighbouring query words that are neighbours in the title too
    ("18 5 episode" prefers Episode #18.5 to Episode #5.18).
    """
    if title_words == words:
        return len(words)
    pairs = set(zip(title_words, title_words[1:], strict=False))
    return sum(pair in pairs for pair in zip(words, words[1:], strict=False))
