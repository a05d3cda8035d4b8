"""How a text index spells a search: words, prefixes, AND, OR, NOT, phrases.

SQLite's FTS5 and PostgreSQL's tsquery say the same things in different
words; ``search/matching.py`` writes its expressions through one of these,
so both backends match exactly the same titles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MatchSyntax:
    """How one text index spells words, prefixes, AND, OR, NOT, phrases and "at the start"."""

    # A word quoted so that any word (AND, NEAR, !) is matched literally. A
    # plain function per syntax: it runs for every completion of every query.
    quote: Callable[[str], str]
    prefix: str  # after a quoted word: match it as a prefix
    and_: str
    or_: str
    then: str  # between the words of a phrase
    start: str  # before a phrase: it must open the title
    but_not: str  # between an expression and the one its matches must not match

    def any_of(self, tokens: Sequence[str]) -> str:
        """One token, or an OR group of them."""
        return tokens[0] if len(tokens) == 1 else "(" + self.or_.join(tokens) + ")"


def _fts5_string(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _tsquery_lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


FTS5 = MatchSyntax(
    quote=_fts5_string, prefix="*", and_=" AND ", or_=" OR ", then=" + ", start="^",
    but_not=" NOT ",
)  # fmt: skip
# The PostgreSQL title index puts a '^' word at position 1 of every title
# (catalog migration 0001), so "at the start" is a phrase that begins with it.
TSQUERY = MatchSyntax(
    quote=_tsquery_lexeme, prefix=":*", and_=" & ", or_=" | ", then=" <-> ", start="'^' <-> ",
    but_not=" & !",
)  # fmt: skip
