"""From the words a person typed to what each of them may match in a title.

A ``QueryPlan`` is a row of slots. Each slot covers one or more query words
and lists the phrases that count as typing them, the words as typed first:

- split and joined words: "spiderman" may be "spider man", and "spider man"
  "spiderman", when the catalog's vocabulary has those words;
- synonyms from the rules ("lotr" may be "lord of the rings");
- numerals: "2" may be "ii" and "ii" may be "2" ("rocky 2" finds Rocky II);
- a sequel numbered after its first word: "x men 2" may be "x2" (X2), when
  the catalog has that word;
- a last word still being typed that drops a letter near its end: "gladiatr"
  may be "gladiator", when more titles hold that word than complete the
  letters typed (``Alternative.corrected``);
- stop words ("the", "der") are optional among other words: a title without
  them still matches, one with them ranks higher;
- a year ("alien 1979") is optional text, matched against the year field by
  the search (``QueryPlan.year``) instead of being required in the title;
- "a quoted phrase" is one slot matched exactly: no alternatives, no typos.

The plan depends only on the query, the rules and the vocabulary, so both
backends turn it into the same text-index expressions (``matching.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reelsearch.search.query import SearchQuery
from reelsearch.search.rulebook import Rules
from reelsearch.search.typos import TypoIndex
from reelsearch.search.vocabulary import Vocabulary

_ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x",
          "xi", "xii", "xiii", "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx")  # fmt: skip
# "2" <-> "ii" up to 20: sequels and parts; beyond that a number is rarely a roman numeral.
NUMERALS = {
    **{str(n): roman for n, roman in enumerate(_ROMAN, start=1)},
    **{roman: str(n) for n, roman in enumerate(_ROMAN, start=1)},
}
# A four-digit word in this range, next to other words, is read as a year.
FIRST_FILM_YEAR, LAST_PLAUSIBLE_YEAR = 1874, 2100
# Split a word into two vocabulary words only from this length ("xmen" -> "x men").
MIN_SPLIT_LENGTH = 4
# At most this many ways to split one word: each one is another OR in the index query.
MAX_SPLITS = 2
# Split a word only while fewer titles than this hold it (or, typed last, its
# completions): "head" is not "he ad", nor "inter" "in ter...", but
# "spiderman" is "spider man". Each split is a phrase the index must also read.
RARE_WORD_TITLES = 50
# No typo candidates for a word longer than this: no title word is so long
# that a typo in it needs forgiving, and the typo search builds every
# two-letter deletion of the word (a 512-letter word: 130 k strings, 120 MB).
MAX_TYPO_WORD_LENGTH = 32
# Articles that French and Italian titles elide before a vowel ("L'Avventura",
# "d'Amelie", "Dell'Amore", "Qu'est-ce", "Un'Altra"): tried in front of a rare
# word of at least MIN_ELIDED_LENGTH letters that starts with a vowel or "h",
# as elision does (so "known" never finds "unknown", nor "ove" "love").
ELIDED_ARTICLES = ("l", "d", "dell", "qu", "un")
MIN_ELIDED_LENGTH = 5
# Before a numeral, these words are optional: "superman part 4" finds Superman IV.
SEQUEL_MARKERS = frozenset({"part", "pt", "episode", "ep", "chapter", "vol", "volume"})
# Sequels titled by their first word and number (X2 for X-Men 2, T2, F/X2): a
# numeral at most this many words after a word may join it ("x men 2" -> "x2").
MAX_SEQUEL_SPAN = 4
# A last word still being typed may drop a letter among the last NEAR_END
# letters of the word meant ("gladiatr" for "gladiator"): that word is an
# alternative when at least CORRECTION_MAJORITY times as many titles hold it as
# hold a completion of the letters typed ("gladiatr": Gladiatrici, 1 title).
# Earlier in the word, or for a rarer word, the letters typed are more likely
# the start of a longer word, and the typo stays a typo.
NEAR_END = 3
CORRECTION_MAJORITY = 3


@dataclass(frozen=True, slots=True)
class Alternative:
    """Words that, side by side in a title, count as typing a slot's words."""

    tokens: tuple[str, ...]
    prefix: bool = False  # the last token may be unfinished (typed last, no space after)
    # The same letters spaced otherwise (a split or joined word): ranks after
    # titles that hold the words as typed ("braindead": Braindead, then Brain Dead).
    respaced: bool = False
    # The tokens anywhere in the title, not side by side: two words typed apart
    # keep matching as two words when a slot also offers them joined.
    adjacent: bool = True
    # A typo the planner corrected ("gladiatr" -> "gladiator"): ranks as the
    # word it stands for, counted among the typos.
    corrected: bool = False


@dataclass(frozen=True, slots=True)
class Slot:
    words: tuple[str, ...]  # the query words it covers, as typed
    alternatives: tuple[Alternative, ...]  # [0] is the words as typed
    typos: bool = False  # typo candidates of the one word may stand in for it
    optional: bool = False  # a title need not hold it (stop word, year)
    is_year: bool = False

    @property
    def typed(self) -> Alternative:
        return self.alternatives[0]


@dataclass(frozen=True, slots=True)
class QueryPlan:
    slots: tuple[Slot, ...]
    excluded: tuple[tuple[str, ...], ...] = ()
    year: int | None = None
    required: tuple[Slot, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", tuple(s for s in self.slots if not s.optional))

    @property
    def typed_words(self) -> tuple[str, ...]:
        """The words as typed, less a year: what the phrase and exact-title tiers look for."""
        return tuple(w for slot in self.slots if not slot.is_year for w in slot.words)

    @property
    def last_is_prefix(self) -> bool:
        words = [slot for slot in self.slots if not slot.is_year]
        return bool(words) and words[-1].typed.prefix

    @property
    def contradicts_itself(self) -> bool:
        """An excluded word that is also required: nothing can match."""
        needed = {slot.typed.tokens for slot in self.required}
        return any(phrase in needed for phrase in self.excluded)

    def without_year(self) -> QueryPlan:
        """The plan with its year read as a plain title word again."""
        slots = tuple(Slot(s.words, s.alternatives) if s.is_year else s for s in self.slots)
        return QueryPlan(slots, self.excluded, None)


def plan_query(
    query: SearchQuery, rules: Rules, vocabulary: Vocabulary, typos: TypoIndex | None = None
) -> QueryPlan:
    """The plan of ``query``; ``typos`` (the catalog's typo index) lets a last word
    still being typed stand for the word it misspells near its end."""
    words = query.words
    quoted_at = dict(query.quoted)
    last = len(words) - 1
    slots: list[Slot] = []
    i = 0
    while i < len(words):
        prefix_at_end = query.last_is_prefix
        if i in quoted_at:
            end = quoted_at[i]
            tokens = words[i:end]
            slots.append(Slot(tokens, (Alternative(tokens, end - 1 == last and prefix_at_end),)))
            i = end
            continue
        free_end = min([*(s for s in quoted_at if s > i), len(words)])
        if words[i] in SEQUEL_MARKERS and i + 1 < free_end and words[i + 1] in NUMERALS:
            slots.append(Slot((words[i],), (Alternative((words[i],)),), optional=True))
            i += 1
            continue
        slot = _synonym_slot(words, i, free_end, rules, last, prefix_at_end)
        if slot is None:
            slot = _sequel_slot(words, i, free_end, rules, vocabulary, last, prefix_at_end)
        if slot is None:
            slot = _joined_slot(words, i, free_end, vocabulary, last, prefix_at_end)
        if slot is None:
            slot = _word_slot(words[i], i == last and prefix_at_end, rules, vocabulary, typos)
        slots.append(slot)
        i += len(slot.words)
    slots, year = _read_year(slots)
    return QueryPlan(_stop_words_optional(slots, rules), query.excluded, year)


def _synonym_slot(
    words: Sequence[str], start: int, end: int, rules: Rules, last: int, prefix: bool
) -> Slot | None:
    """The longest run of words from ``start`` that the rules give synonyms for."""
    for stop in range(min(end, start + rules.longest_synonym), start, -1):
        span = tuple(words[start:stop])
        others = rules.alternatives(span)
        if others:
            typed = Alternative(span, stop - 1 == last and prefix)
            return Slot(span, (typed, *(Alternative(o) for o in others)))
    return None


def _joined_slot(
    words: Sequence[str], start: int, end: int, vocabulary: Vocabulary, last: int, prefix: bool
) -> Slot | None:
    """Two words that the catalog also writes as one: "spider man" -> "spiderman"."""
    if start + 2 > end:
        return None
    pair = (words[start], words[start + 1])
    joined = pair[0] + pair[1]
    is_prefix = start + 1 == last and prefix
    if joined not in vocabulary and not (is_prefix and vocabulary.has_prefix(joined)):
        return None
    return Slot(
        pair,
        (
            Alternative(pair, is_prefix, adjacent=False),
            Alternative((joined,), is_prefix, respaced=True),
        ),
    )


def _sequel_slot(
    words: Sequence[str],
    start: int,
    end: int,
    rules: Rules,
    vocabulary: Vocabulary,
    last: int,
    prefix: bool,
) -> Slot | None:
    """Words up to a sequel number that the catalog writes as the first word and
    the number joined: "x men 2" (or "x men ii") -> "x2", as X2 is titled.

    The words typed still match anywhere in a title, the numeral as digits or
    roman. Two words ("x 2" -> "x2") are ``_joined_slot``'s. A stop word never
    starts one: "a man 2" is no sequel of "A2".
    """
    first = words[start]
    if first.isdigit() or first in rules.stop_words:
        return None
    for at in range(start + 1, min(end, start + MAX_SEQUEL_SPAN + 1)):
        word = words[at]
        if word in SEQUEL_MARKERS:
            return None
        if word not in NUMERALS:
            continue
        if at == start + 1:
            return None
        digits = word if word.isdigit() else NUMERALS[word]
        joined = first + digits
        if joined not in vocabulary:
            return None
        typed = tuple(words[start : at + 1])
        other = (*typed[:-1], NUMERALS[word])
        is_prefix = at == last and prefix
        return Slot(
            typed,
            (
                Alternative(typed, is_prefix, adjacent=False),
                Alternative(other, adjacent=False),
                Alternative((joined,), respaced=True),
            ),
        )
    return None


def _word_slot(
    word: str, is_prefix: bool, rules: Rules, vocabulary: Vocabulary, typos: TypoIndex | None
) -> Slot:
    alternatives = [Alternative((word,), is_prefix)]
    numeral = NUMERALS.get(word)
    if numeral is not None:
        alternatives.append(Alternative((numeral,)))
    elif (
        len(word) >= MIN_SPLIT_LENGTH
        and not word.isdigit()
        and vocabulary.titles_with(word, prefix=is_prefix, up_to=RARE_WORD_TITLES)
        < RARE_WORD_TITLES
    ):
        alternatives += [
            Alternative(pair, is_prefix, respaced=True) for pair in _splits(word, vocabulary)
        ]
        alternatives += [
            Alternative((elided,), is_prefix, respaced=True)
            for elided in _elided(word, is_prefix, vocabulary)
        ]
    # Typed initials ("swat" for S.W.A.T., "gi jane"), only where some title
    # spells them so: a phrase of one-letter words is costly, others never pay it.
    if word in vocabulary.initialisms:
        alternatives.append(Alternative(tuple(word)))
    if is_prefix and typos is not None and len(word) <= MAX_TYPO_WORD_LENGTH:
        alternatives += [
            Alternative((meant,), corrected=True)
            for meant in _dropped_near_end(word, typos, vocabulary)
        ]
    return Slot(
        (word,),
        tuple(alternatives),
        typos=len(word) <= MAX_TYPO_WORD_LENGTH,
        optional=word in rules.stop_words,
    )


def _elided(word: str, is_prefix: bool, vocabulary: Vocabulary) -> list[str]:
    """The word after an elided article, as titles write it joined: normalize() drops
    the apostrophe, so L'Avventura is "lavventura" and "avventura" finds it."""
    if len(word) < MIN_ELIDED_LENGTH or word[0] not in "aeiouh":  # elision is before a vowel
        return []
    found = []
    for article in ELIDED_ARTICLES:
        joined = article + word
        if joined in vocabulary or (is_prefix and vocabulary.has_prefix(joined)):
            found.append(joined)
    return found


def _dropped_near_end(word: str, typos: TypoIndex, vocabulary: Vocabulary) -> list[str]:
    """The words ``word`` is, less one letter near their end, that clearly more
    titles hold than complete ``word``: "gladiatr" -> "gladiator" (5 titles
    against Gladiatrici's 1). The last letter dropped is a prefix already."""
    meant = {
        other: vocabulary.doc_count(other)
        for other in typos.candidates(word)
        if len(other) == len(word) + 1 and _is_dropped_near_end(word, other)
    }
    if not meant:
        return []
    # Counted only as far as it can matter: past this, no candidate qualifies.
    up_to = max(meant.values()) // CORRECTION_MAJORITY + 1
    completing = max(vocabulary.titles_with(word, prefix=True, up_to=up_to), 1)
    return [other for other, titles in meant.items() if titles >= CORRECTION_MAJORITY * completing]


def _is_dropped_near_end(typed: str, meant: str) -> bool:
    """Whether ``typed`` is ``meant`` with one of its last NEAR_END letters but the
    very last one left out."""
    for at in range(max(len(meant) - NEAR_END, 0), len(meant) - 1):
        if meant[:at] + meant[at + 1 :] == typed:
            return True
    return False


def _splits(word: str, vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """Up to MAX_SPLITS ways to cut ``word`` into two catalog words, most balanced
    first: "spiderman" -> "spider man" before "spi derman"."""
    found: list[tuple[str, str]] = []
    for cut in sorted(range(1, len(word) - 1), key=lambda cut: abs(len(word) - 2 * cut)):
        if word[:cut] in vocabulary and word[cut:] in vocabulary:
            found.append((word[:cut], word[cut:]))
            if len(found) == MAX_SPLITS:
                break
    return found


def _read_year(slots: list[Slot]) -> tuple[list[Slot], int | None]:
    """The last four-digit word that can be a year, when other words remain to search for."""
    for index in range(len(slots) - 1, -1, -1):
        slot = slots[index]
        word = slot.words[0]
        if (
            len(slot.words) == 1
            and len(word) == 4
            and word.isdigit()
            and FIRST_FILM_YEAR <= int(word) <= LAST_PLAUSIBLE_YEAR
            and len(slot.alternatives) == 1
            and any(other is not slot and not other.optional for other in slots)
        ):
            year_slot = Slot(slot.words, (Alternative(slot.words),), optional=True, is_year=True)
            return [*slots[:index], year_slot, *slots[index + 1 :]], int(word)
    return slots, None


def _stop_words_optional(slots: list[Slot], rules: Rules) -> tuple[Slot, ...]:
    """Stop words stay optional only next to a word that is not one ("the the" is required)."""
    if any(not slot.optional for slot in slots):
        return tuple(slots)
    return tuple(
        slot if slot.is_year else Slot(slot.words, slot.alternatives, slot.typos) for slot in slots
    )
