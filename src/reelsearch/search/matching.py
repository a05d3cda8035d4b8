"""From the words of a query to FTS5 expressions, and back to relevance tiers.

``TextMatch`` builds the expressions the SQLite engine sends for each tier
(phrase at the start, phrase anywhere, finished last word, every word, with
typos), and ranks a title already known to match into the same tiers from
its words, so a small match set needs one index read instead of one per tier.
"""

from __future__ import annotations

from collections.abc import Sequence

from reelsearch.search.normalize import word_key
from reelsearch.search.snapshot import CatalogSnapshot

# A last word this long that exists in the catalog is taken as finished.
FINISHED_WORD_LENGTH = 5


def quote_word(word: str) -> str:
    """An FTS5 string token: any word, even AND or NEAR, is matched literally."""
    return '"' + word.replace('"', '""') + '"'


def any_of(tokens: Sequence[str]) -> str:
    """One token, or an FTS5 OR group of them."""
    return tokens[0] if len(tokens) == 1 else "(" + " OR ".join(tokens) + ")"


class TextMatch:
    """FTS5 expressions for the as-typed tier and, computed only if needed, the typo tier."""

    __slots__ = (
        "_terms",
        "_with_typos",
        "exact_title",
        "last_is_finished",
        "last_is_prefix",
        "preferred",
        "plain",
        "typos",
        "vocabulary",
        "word_key",
        "words",
    )

    def __init__(
        self, snapshot: CatalogSnapshot, words: Sequence[str], last_is_prefix: bool
    ) -> None:
        vocabulary = snapshot.vocabulary
        self.typos = snapshot.typos
        self.vocabulary = vocabulary
        self.words = words
        self.last_is_prefix = last_is_prefix
        self.exact_title = " ".join(words)
        self.word_key = word_key(self.exact_title)
        # Each word as the FTS tokens it may match: itself, or for the last
        # word while typing, its completions.
        options = [[quote_word(word)] for word in words]
        if last_is_prefix:
            options[-1] = self._prefix_options(words[-1])
        terms = [any_of(tokens) for tokens in options]
        self._terms = terms
        self.plain = " AND ".join(terms)
        # After other words, a long last word that is already a whole word of
        # some title is likely finished: it matches as that word before its
        # completions ("almost angel" -> Almost an Angel before Almost Angels).
        # Short ones are likely mid-word ("the mat" -> The Matrix).
        if (
            last_is_prefix
            and len(words) > 1
            and len(words[-1]) >= FINISHED_WORD_LENGTH
            and words[-1] in vocabulary
        ):
            whole = [*options[:-1], [quote_word(words[-1])]]
            self.last_is_finished = True
        else:
            whole = options
            self.last_is_finished = not last_is_prefix
        preferred: list[str] = []
        if len(words) > 1:
            # Words side by side in the order typed, at the start of the title,
            # then anywhere: "night p" -> Night People before Fright Night Part II.
            # A phrase can't hold an OR, so one phrase per completion.
            head = " + ".join(tokens[0] for tokens in whole[:-1])
            phrases = [f"{head} + {last}" for last in whole[-1]]
            preferred.append(any_of([f"^{phrase}" for phrase in phrases]))
            preferred.append(any_of(phrases))
        if whole is not options:
            preferred.append(" AND ".join(any_of(tokens) for tokens in whole))
        self.preferred = tuple(preferred)
        self._with_typos: str | None | bool = False  # False: not computed yet

    def order_score(self, title_words: Sequence[str]) -> int:
        """How closely a title with the query's words keeps their order.

        The title as typed scores highest; otherwise one point per pair of
        neighbouring query words that are neighbours in the title too
        ("18 5 episode" prefers Episode #18.5 to Episode #5.18).
        """
        if list(title_words) == list(self.words):
            return len(self.words)
        pairs = set(zip(title_words, title_words[1:], strict=False))
        return sum(pair in pairs for pair in zip(self.words, self.words[1:], strict=False))

    def tier_of(self, title_words: Sequence[str]) -> int:
        """The tier of a title that matches ``plain``, computed from its words.

        Mirrors the SQL tiers (0 exact words, then the ``preferred``
        expressions in order, then ``plain``) for a title already known to match.
        """
        words = self.words
        if list(title_words) == list(words) or sorted(title_words) == sorted(words):
            return 0
        n = len(words)
        last = words[-1]
        finished = self.last_is_finished

        def last_fits(candidate: str) -> bool:
            return candidate == last if finished else candidate.startswith(last)

        tier = 1
        if n > 1:
            head = list(words[:-1])
            for start in range(len(title_words) - n + 1):
                if list(title_words[start : start + n - 1]) == head and last_fits(
                    title_words[start + n - 1]
                ):
                    return tier if start == 0 else tier + 1
            tier += 2
        if finished and self.last_is_prefix:
            if last in title_words:
                return tier
            tier += 1
        return tier

    def _prefix_options(self, word: str) -> list[str]:
        completions = self.vocabulary.completions(word)
        if completions is None:  # short: the index's own prefix lookup is fast
            return [quote_word(word) + "*"]
        return [quote_word(c) for c in completions] or [quote_word(word)]  # none: matches nothing

    @property
    def with_typos(self) -> str | None:
        """Every word as typed or within its typos, or None when no word has a candidate."""
        if self._with_typos is False:
            groups: list[str] = []
            found = False
            for position, word in enumerate(self.words):
                candidates = self.typos.candidates(word)
                found = found or bool(candidates)
                groups.append(" OR ".join([self._terms[position], *map(quote_word, candidates)]))
            self._with_typos = " AND ".join(f"({g})" for g in groups) if found else None
        return self._with_typos  # type: ignore[return-value]
