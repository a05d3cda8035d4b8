"""Which cached answers a write of a few movies can change (docs/decisions/0015).

Every stored answer is tagged with what it searched (``cache/tags.py``):
``w:<word>`` for each word a title must hold for the answer to count it,
``p:<word>`` for a word typed last and still unfinished (a prefix),
``x:``/``y:`` for words matched only as they are (joined pairs, synonyms),
``m:<id>`` for each movie on its page and ``browse`` when it had no words.
A write is a list of ``MovieChange``: a movie's normalized title words
(alternate titles included) before and after. ``ChangeMatcher`` says which
tags such a write reaches, following the engine's own matching rules
(``search/plan.py``, ``matching.py``, ``typos.py``, ``vocabulary.py``):

- the word itself; a prefix that a changed word begins with;
- a word within the engine's typo rule of a changed word (its typo candidates
  are chosen among such words, so a new or gone one can change them);
- split words: a query word a changed title spells as two ("spider man" for
  "spiderman"), or whose pieces enter or leave the vocabulary (a split is
  only tried with pieces the vocabulary holds); elided articles
  ("lavventura" for "avventura");
- initialisms: a query word the changed title spells letter by letter;
- synonyms and numerals are expanded into ``w:`` tags when the entry is stored.

Whatever a write does to an answer, it does through a title that matches
the answer's words, before or after the write, or through a change in what
the vocabulary offers those words: both are what the rules above look for.
``browse`` answers (filters only) are all dropped by any write: a change
carries no filter values, and every movie is a candidate of some filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from reelsearch.search.plan import ELIDED_ARTICLES, MIN_SPLIT_LENGTH
from reelsearch.search.typos import ONE_TYPO_FROM, TWO_TYPOS_FROM, typos_for_length
from reelsearch.search.vocabulary import MAX_INITIALS

WORD, PREFIX, MOVIE = "w:", "p:", "m:"
# Tokens matched only as they are (a joined pair, a synonym, a numeral): no typos,
# splits or elision apply to them, only equality ("x:") or being begun ("y:").
EXACT, EXACT_PREFIX = "x:", "y:"
WORD_KINDS = (WORD, PREFIX, EXACT, EXACT_PREFIX)
BROWSE = "browse"
# The most typos the engine forgives in any word (typos.py: two from 9 letters).
_MOST_TYPOS = typos_for_length(10_000)


@dataclass(frozen=True, slots=True)
class MovieChange:
    """One movie written: its id and its normalized title words before and after.

    The shape of ``reelsearch.catalog.changes.MovieChange`` (the documents API's
    change log); anything with these attributes will do.
    """

    version: int
    movie_id: Any  # int (str ids are tagged alike: "m:<id>")
    words_before: frozenset[str]
    words_after: frozenset[str]


class ChangeLike(Protocol):
    """What the matcher reads of a change: any object with these attributes."""

    @property
    def version(self) -> int: ...
    @property
    def movie_id(self) -> Any: ...
    @property
    def words_before(self) -> frozenset[str]: ...
    @property
    def words_after(self) -> frozenset[str]: ...


# How many titles hold a word now (the engine's vocabulary); None when unknown.
DocCount = Callable[[str], int]


class ChangeMatcher:
    """The tags a set of movie changes reaches; built once per write, asked per tag."""

    def __init__(self, changes: Sequence[ChangeLike], doc_count: DocCount | None = None) -> None:
        self.movies = frozenset(f"{MOVIE}{change.movie_id}" for change in changes)
        titles = [frozenset(c.words_before) for c in changes]
        titles += [frozenset(c.words_after) for c in changes]
        titles = [words for words in titles if words]
        words = frozenset().union(*titles) if titles else frozenset()
        self.words = words
        self.sorted_words = sorted(words)
        # Every prefix of every changed word: a typed prefix reaches those.
        self.prefixes = {word[:i] for word in words for i in range(1, len(word) + 1)}
        # Words that elision joins to an article ("lavventura" -> "avventura").
        elided = {
            word[len(article) :]
            for word in words
            for article in ELIDED_ARTICLES
            if word.startswith(article) and len(word) > len(article)
        }
        self.elided = elided
        self.elided_prefixes = {w[:i] for w in elided for i in range(1, len(w) + 1)}
        # Two words of one title side by side make a split of their concatenation.
        self.joined = {a + b for title in titles for a in title for b in title}
        self.unstable = self._unstable(changes, words, doc_count)
        self.letter_sets = [
            letters
            for letters in (frozenset(w for w in title if len(w) == 1) for title in titles)
            if len(letters) >= 2
        ]

    @staticmethod
    def _unstable(
        changes: Sequence[ChangeLike], words: frozenset[str], doc_count: DocCount | None
    ) -> frozenset[str]:
        """Changed words that may enter or leave the vocabulary with this write.

        A word counted in at least 1 + (titles gaining it) + (titles losing it)
        titles is in the vocabulary before and after, whether the count read
        is from before the write or after it. Without counts, every word may.
        """
        if doc_count is None:
            return words
        moved: dict[str, int] = {}
        for change in changes:
            for word in change.words_before.symmetric_difference(change.words_after):
                moved[word] = moved.get(word, 0) + 1
        return frozenset(w for w in words if doc_count(w) < 1 + moved.get(w, 0))

    def reached_words(self, tokens: Iterable[tuple[str, bool]]) -> set[tuple[str, bool]]:
        """Of ``(word, is_prefix)`` pairs, those a changed title may now match differently."""
        tokens = list(dict.fromkeys(tokens))
        if not self.words:
            return set()
        reached = {token for token in tokens if self._reaches(*token)}
        reached.update(self._within_typos([t for t in tokens if t not in reached]))
        return reached

    def _reaches(self, word: str, prefix: bool) -> bool:
        if word in self.words or word in self.elided:
            return True
        if prefix and (word in self.prefixes or word in self.elided_prefixes):
            return True
        if self._splits(word, prefix):
            return True
        return any(len(word) <= MAX_INITIALS and set(word) <= ls for ls in self.letter_sets)

    def _splits(self, word: str, prefix: bool) -> bool:
        """A split of ``word`` that this write may add, remove or newly match."""
        if len(word) < MIN_SPLIT_LENGTH or word.isdigit():
            return False
        if word in self.joined:
            return True
        for cut in range(1, len(word)):
            head, tail = word[:cut], word[cut:]
            if head in self.unstable or tail in self.unstable:
                return True
            # Typed last, the second piece is a prefix: a title holding the first
            # piece and a word the second begins may now match.
            if prefix and head in self.words and tail in self.prefixes:
                return True
        return False

    def _within_typos(self, tokens: list[tuple[str, bool]]) -> set[tuple[str, bool]]:
        """Tokens within the engine's typo rule of a changed word (OSA, as typos.py)."""
        candidates = [t for t in tokens if not any(ch.isdigit() for ch in t[0])]
        if not candidates:
            return set()
        changed = self.sorted_words
        distances = process.cdist(
            [word for word, _ in candidates], changed, scorer=OSA.distance,
            score_cutoff=_MOST_TYPOS, workers=1,
        )  # fmt: skip
        # typos_for_length of the longer word of each pair, for every pair at once.
        longer = np.maximum(
            np.array([len(word) for word, _ in candidates])[:, None],
            np.array([len(word) for word in changed])[None, :],
        )
        allowed = np.where(longer >= TWO_TYPOS_FROM, 2, np.where(longer >= ONE_TYPO_FROM, 1, 0))
        within = np.any(np.asarray(distances) <= allowed, axis=1)
        hits: list[bool] = np.asarray(within, dtype=bool).tolist()
        return {token for token, hit in zip(candidates, hits, strict=True) if hit}

    def reached_tags(self, tags: Iterable[str]) -> set[str]:
        """Of an entry's or a level's tags, those this write reaches."""
        tags = set(tags)
        hit = {tag for tag in tags if tag in self.movies or tag == BROWSE}
        for tag in tags:
            kind = tag[:2]
            if (kind == EXACT and tag[2:] in self.words) or (
                kind == EXACT_PREFIX and tag[2:] in self.prefixes
            ):
                hit.add(tag)
        tokens = [(tag[2:], tag.startswith(PREFIX)) for tag in tags if tag[:2] in (WORD, PREFIX)]
        for word, prefix in self.reached_words(tokens):
            hit.add((PREFIX if prefix else WORD) + word)
        return hit

    def affects(self, tags: Sequence[str]) -> bool:
        """Whether an entry with ``tags`` may answer differently after these changes."""
        return bool(self.reached_tags(tags))


def word_tags(tags: Iterable[str]) -> list[str]:
    """The tags of words searched among ``tags`` (what a Redis level lists for a write)."""
    return [tag for tag in tags if tag[:2] in WORD_KINDS]
