"""From the words of a query to text-index expressions, and back to relevance tiers.

``TextMatch`` builds the expressions an engine sends for each tier (phrase at
the start, phrase anywhere, finished last word, every word, with typos), in
the syntax of its text index: FTS5 on SQLite, tsquery on PostgreSQL. The two
say the same things (AND, OR, a phrase, a prefix, the start of the title), so
both backends match exactly the same titles. It also ranks a title already
known to match into the same tiers from its words, so a small match set
needs one index read instead of one per tier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reelsearch.search.normalize import word_key
from reelsearch.search.snapshot import CatalogSnapshot

# A last word this long that exists in the catalog is taken as finished.
FINISHED_WORD_LENGTH = 5


@dataclass(frozen=True, slots=True)
class MatchSyntax:
    """How one text index spells words, prefixes, AND, OR, phrases and "at the start"."""

    # A word quoted so that any word (AND, NEAR, !) is matched literally. A
    # plain function per syntax: it runs for every completion of every query.
    quote: Callable[[str], str]
    prefix: str  # after a quoted word: match it as a prefix
    and_: str
    or_: str
    then: str  # between the words of a phrase
    start: str  # before a phrase: it must open the title

    def any_of(self, tokens: Sequence[str]) -> str:
        """One token, or an OR group of them."""
        return tokens[0] if len(tokens) == 1 else "(" + self.or_.join(tokens) + ")"


def _fts5_string(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _tsquery_lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


FTS5 = MatchSyntax(quote=_fts5_string, prefix="*", and_=" AND ", or_=" OR ", then=" + ", start="^")
# The PostgreSQL title index puts a '^' word at position 1 of every title
# (catalog migration 0001), so "at the start" is a phrase that begins with it.
TSQUERY = MatchSyntax(
    quote=_tsquery_lexeme, prefix=":*", and_=" & ", or_=" | ", then=" <-> ", start="'^' <-> "
)


class TextMatch:
    """FTS5 expressions for the as-typed tier and, computed only if needed, the typo tier."""

    __slots__ = (
        "_syntax",
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
        self,
        snapshot: CatalogSnapshot,
        words: Sequence[str],
        last_is_prefix: bool,
        syntax: MatchSyntax,
    ) -> None:
        self._syntax = syntax
        quote, any_of = syntax.quote, syntax.any_of
        vocabulary = snapshot.vocabulary
        self.typos = snapshot.typos
        self.vocabulary = vocabulary
        self.words = words
        self.last_is_prefix = last_is_prefix
        self.exact_title = " ".join(words)
        self.word_key = word_key(self.exact_title)
        # Each word as the FTS tokens it may match: itself, or for the last
        # word while typing, its completions.
        options = [[quote(word)] for word in words]
        if last_is_prefix:
            options[-1] = self._prefix_options(words[-1])
        terms = [any_of(tokens) for tokens in options]
        self._terms = terms
        self.plain = syntax.and_.join(terms)
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
            whole = [*options[:-1], [quote(words[-1])]]
            self.last_is_finished = True
        else:
            whole = options
            self.last_is_finished = not last_is_prefix
        preferred: list[str] = []
        if len(words) > 1:
            # Words side by side in the order typed, at the start of the title,
            # then anywhere: "night p" -> Night People before Fright Night Part II.
            # A phrase can't hold an OR, so one phrase per completion.
            then = syntax.then
            head = then.join(tokens[0] for tokens in whole[:-1])
            phrases = [f"{head}{then}{last}" for last in whole[-1]]
            preferred.append(any_of([f"{syntax.start}{phrase}" for phrase in phrases]))
            preferred.append(any_of(phrases))
        if whole is not options:
            preferred.append(syntax.and_.join(any_of(tokens) for tokens in whole))
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
        quote = self._syntax.quote
        completions = self.vocabulary.completions(word)
        if completions is None:  # short: the index's own prefix lookup is fast
            return [quote(word) + self._syntax.prefix]
        return [quote(c) for c in completions] or [quote(word)]  # none: matches nothing

    @property
    def with_typos(self) -> str | None:
        """Every word as typed or within its typos, or None when no word has a candidate."""
        if self._with_typos is False:
            syntax = self._syntax
            groups: list[str] = []
            found = False
            for position, word in enumerate(self.words):
                candidates = self.typos.candidates(word)
                found = found or bool(candidates)
                options = [self._terms[position], *map(syntax.quote, candidates)]
                groups.append(syntax.or_.join(options))
            self._with_typos = syntax.and_.join(f"({g})" for g in groups) if found else None
        return self._with_typos  # type: ignore[return-value]
