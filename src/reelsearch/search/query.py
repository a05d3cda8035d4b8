"""Parse and validate search parameters into a ``SearchQuery``.

Everything a client can get wrong is caught here, with the parameter named,
before any SQL is built: the engine only ever sees valid values.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache

import orjson

from reelsearch.errors import InvalidRequest
from reelsearch.search.normalize import normalize

# A movie's fields; a search hit adds what matched.
MOVIE_FIELDS = ("id", "title", "year", "rating", "votes", "genres", "runtime_min", "kind",
                "source", "source_id")  # fmt: skip
HIT_FIELDS = (*MOVIE_FIELDS, "matched_title", "highlights")
FACETS = ("genres", "decade")
SORTS = ("relevance", "year", "-year", "rating", "-rating", "votes", "-votes")
SEARCH_PARAMS = frozenset(
    {"q", "year_from", "year_to", "genres", "genres_mode", "min_rating", "min_votes", "kind",
     "sort", "limit", "offset", "cursor", "fields", "facets", "explain"}
)  # fmt: skip
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# Deep pages cost as much as every page before them; nobody reads page 1,000.
MAX_OFFSET = 10_000
# Longest word (UTF-8 bytes, after normalization) a title index holds: PostgreSQL
# refuses longer tsquery words and the importers drop longer title words, so
# such a word could never match. Normalizing can multiply bytes (a Hangul
# syllable becomes three jamo), so a short q can still hold one.
MAX_WORD_BYTES = 2047
MIN_YEAR, MAX_YEAR = 1800, 2200
# The defaults of Settings.max_query_chars and max_query_words, for callers without settings.
DEFAULT_MAX_QUERY_CHARS = 256
DEFAULT_MAX_QUERY_WORDS = 32
# One part of q: an optional "-" (exclude), then a "quoted phrase" (the closing
# quote may be missing while a person types) or a run of anything else.
_PART = re.compile(r'(-?)(?:"([^"]*)("?)|([^\s"]+))')
# The number syntax of the query parameters (and of the OpenAPI patterns): ASCII only.
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A validated search: the words typed, filters, order and page."""

    text: str = ""
    # The words to search for, in the order typed (quoted ones included).
    words: tuple[str, ...] = ()
    # The last word may be unfinished while a person types (no trailing space).
    last_is_prefix: bool = True
    # [start, end) ranges of ``words`` typed as "a quoted phrase": matched as
    # a phrase, exactly (no typos, synonyms or split words inside).
    quoted: tuple[tuple[int, int], ...] = ()
    # -word and -"a phrase": titles holding them are left out.
    excluded: tuple[tuple[str, ...], ...] = ()
    # Each hit's score in its parts (admin only: the route checks the token).
    explain: bool = False
    year_from: int | None = None
    year_to: int | None = None
    genres: tuple[str, ...] = ()
    genres_mode: str = "any"
    min_rating: float | None = None
    min_votes: int | None = None
    kind: str | None = None
    sort: str = "relevance"
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    fields: tuple[str, ...] = HIT_FIELDS
    facets: tuple[str, ...] = ()

    @property
    def has_filters(self) -> bool:
        return any(
            v is not None for v in (self.year_from, self.year_to, self.min_rating,
                                    self.min_votes, self.kind)
        ) or bool(self.genres)  # fmt: skip

    def fingerprint(self) -> int:
        """Identifies the result list (not the page), so a cursor can't be replayed elsewhere.

        Spellings of one search share it (the raw text and genre case and order
        are left out), so a cached page's cursor serves each of them.
        """
        return _fingerprint(self)

    def next_cursor(self, total: int, total_is_exact: bool, hits: int) -> str | None:
        """The cursor of the next page, or None on the last one.

        A capped total (``total_is_exact`` false) is a floor, so more pages
        may follow it; a short page is always the last.
        """
        following = self.offset + self.limit
        if hits < self.limit or following > MAX_OFFSET:
            return None
        if total_is_exact and following >= total:
            return None
        raw = orjson.dumps({"o": following, "f": self.fingerprint()})
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def first_words(self, n: int) -> SearchQuery:
        """The same search with only its first ``n`` words; a word cut after counts as finished."""
        if n >= len(self.words):
            return self
        quoted = tuple((a, min(b, n)) for a, b in self.quoted if a < n)
        return replace(self, words=self.words[:n], quoted=quoted, last_is_prefix=False)

    def without_last_word(self) -> SearchQuery:
        """The same search less its last word, whose predecessor now counts as finished."""
        return self.first_words(len(self.words) - 1)


@lru_cache(maxsize=4096)
def _fingerprint(query: SearchQuery) -> int:
    """``SearchQuery.fingerprint``, kept per query: a search with a next page asks
    for it, and the copy and repr behind it cost more than the rest of the
    cursor (about as many queries as the route's parser keeps)."""
    page_free = replace(
        query, limit=DEFAULT_LIMIT, offset=0, fields=(), facets=(), explain=False, text="",
        genres=tuple(sorted({name.lower() for name in query.genres})),
    )  # fmt: skip
    return zlib.crc32(repr(page_free).encode())


def parse_text(text: str) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...],
                                   tuple[tuple[str, ...], ...], bool]:  # fmt: skip
    """``q`` into its words, quoted ranges, excluded phrases and whether the last is a prefix.

    A "-" excludes only at the start of a part, so "spider-man" is two words,
    not an exclusion. The last word is a prefix while it is still being typed:
    no space after it, not excluded, not closed by a quote.
    """
    words: list[str] = []
    quoted: list[tuple[int, int]] = []
    excluded: list[tuple[str, ...]] = []
    last_is_prefix = bool(text) and not text[-1].isspace()
    for match in _PART.finditer(text):
        minus, phrase, closing, plain = match.groups()
        is_phrase = phrase is not None
        found = tuple(normalize(phrase if is_phrase else plain).split())
        if not found:
            continue
        if minus:
            excluded.append(found)
            ends_typing = True
        else:
            if is_phrase:
                quoted.append((len(words), len(words) + len(found)))
            words.extend(found)
            ends_typing = bool(is_phrase and closing)
        if match.end() == len(text) and ends_typing:
            last_is_prefix = False
    return tuple(words), tuple(quoted), tuple(excluded), last_is_prefix


def parse_search(
    params: Sequence[tuple[str, str]],
    *,
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    max_query_words: int = DEFAULT_MAX_QUERY_WORDS,
) -> SearchQuery:
    """Build a ``SearchQuery`` from decoded query-string pairs, or raise ``InvalidRequest``."""
    values = _single_values(params, SEARCH_PARAMS)
    text = values.get("q", "")
    if len(text) > max_query_chars:
        raise InvalidRequest(
            f"q is {len(text)} characters long; the limit is {max_query_chars}",
            param="q",
            code="too_long",
        )
    if any(ord(ch) < 32 and ch not in "\t" for ch in text):
        raise InvalidRequest("q contains control characters", param="q")
    words, quoted, excluded, last_is_prefix = parse_text(text)
    _check_normalized_size(words, excluded, max_query_chars, max_query_words)
    if any(len(word.encode()) > MAX_WORD_BYTES for word in (*words, *sum(excluded, ()))):
        raise InvalidRequest(
            f"q has a word longer than {MAX_WORD_BYTES} bytes; no title has one", param="q"
        )
    if excluded and not words:
        raise InvalidRequest(
            "q only excludes words (-word); give at least one word to search for", param="q"
        )
    query = SearchQuery(
        text=text,
        words=words,
        last_is_prefix=last_is_prefix if text else True,
        quoted=quoted,
        excluded=excluded,
        explain=_choice(values, "explain", ("true", "false"), "false") == "true",
        year_from=_int(values, "year_from", MIN_YEAR, MAX_YEAR),
        year_to=_int(values, "year_to", MIN_YEAR, MAX_YEAR),
        genres=_names(values, "genres"),
        genres_mode=_choice(values, "genres_mode", ("any", "all"), "any"),
        min_rating=_lower_bound(values, "min_rating", 0.0, 10.0),
        min_votes=_int(values, "min_votes", 0, 2**31 - 1),
        kind=values.get("kind") or None,
        sort=_choice(values, "sort", SORTS, "relevance"),
        limit=_int(values, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
        offset=_int(values, "offset", 0, MAX_OFFSET) or 0,
        fields=_subset(values, "fields", HIT_FIELDS) or HIT_FIELDS,
        facets=_subset(values, "facets", FACETS),
    )
    if (
        query.year_from is not None
        and query.year_to is not None
        and query.year_from > query.year_to
    ):
        raise InvalidRequest("year_from is after year_to", param="year_from")
    if "cursor" in values:
        if "offset" in values:
            raise InvalidRequest("give either offset or cursor, not both", param="cursor")
        query = replace(query, offset=_decode_cursor(values["cursor"], query.fingerprint()))
    return query


def parse_autocomplete(
    params: Sequence[tuple[str, str]],
    *,
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
    max_query_words: int = DEFAULT_MAX_QUERY_WORDS,
) -> SearchQuery:
    """``q`` and ``limit`` only: titles for a suggestion list."""
    values = _single_values(params, frozenset({"q", "limit"}))
    return parse_search(
        list(values.items()), max_query_chars=max_query_chars, max_query_words=max_query_words
    )


def _check_normalized_size(
    words: Sequence[str], excluded: Sequence[Sequence[str]], max_chars: int, max_words: int
) -> None:
    """The limits again on what normalization made of q: the words are what a search costs.

    Normalizing can multiply text: one U+FDFA is four words of 18 letters,
    one U+FB03 is "ffi". A q within the character limit as sent may not be
    within it as searched.
    """
    every = [*words, *(word for phrase in excluded for word in phrase)]
    if len(every) > max_words:
        raise InvalidRequest(
            f"q has {len(every)} words after normalization; the limit is {max_words}",
            param="q",
            code="too_long",
        )
    chars = sum(map(len, every)) + max(len(every) - 1, 0)
    if chars > max_chars:
        raise InvalidRequest(
            f"q is {chars} characters long after normalization; the limit is {max_chars}",
            param="q",
            code="too_long",
        )


def _single_values(params: Sequence[tuple[str, str]], allowed: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in params:
        if key not in allowed:
            raise InvalidRequest(
                f"unknown parameter {key[:40]!r}; known: {', '.join(sorted(allowed))}",
                param=key[:40],
                code="unknown_parameter",
            )
        if key in values:
            raise InvalidRequest(f"{key} is given more than once", param=key)
        values[key] = value
    # An empty value (`limit=`, `cursor=`) means the parameter was not given,
    # for every parameter alike: a form leaves its empty fields in the URL.
    return {key: value for key, value in values.items() if value != ""}


def _int(values: dict[str, str], name: str, low: int, high: int) -> int | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    # ASCII digits only: int() would also take "1_0", "+5", " 5" and
    # Arabic-Indic or full-width digits, none of which the spec allows.
    if not _DIGITS.fullmatch(raw):
        raise InvalidRequest(
            f"{name} must be a whole number in ASCII digits, not {raw[:20]!r}", param=name
        )
    # Past 18 digits it is out of every range here; int() of a huge string is slow.
    if len(raw.lstrip("0")) > 18 or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}", param=name)
    return int(raw)


def _lower_bound(values: dict[str, str], name: str, low: float, high: float) -> float | None:
    """A lower bound written in decimal, as the least double that no value below it reaches.

    Values (ratings) are doubles read from decimal text and shown as their shortest
    decimal (8.7 is stored as the double nearest 8.7, shown "8.7"), and the filter
    compares doubles. A bound is the nearest double to what the client wrote, unless
    that double is below it, which only a bound with more significant digits than a
    double holds can be (7.3000000000000001 reads as the double 7.3): it is then the
    next double up. So "value >= bound" holds exactly when the value as shown is at
    least the bound as written, and the cache key, made of the same double, agrees.
    """
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    # ASCII decimal notation only (an exponent allowed: JSON and most clients
    # write 1e-05): float() would also take "inf", "nan", "1_0" and other scripts' digits.
    if not _DECIMAL.fullmatch(raw):
        raise InvalidRequest(f"{name} must be a number, not {raw[:20]!r}", param=name)
    written = Decimal(raw)  # exact: 10.0000000000000001 is over 10, not 10
    if not low <= written <= high:
        raise InvalidRequest(f"{name} must be between {low:g} and {high:g}", param=name)
    number = float(raw)
    if Decimal(repr(number)) < written:
        number = math.nextafter(number, math.inf)
    return number


def _choice(values: dict[str, str], name: str, choices: Sequence[str], default: str) -> str:
    raw = values.get(name) or default
    if raw not in choices:
        raise InvalidRequest(
            f"{name} must be one of {', '.join(choices)}, not {raw[:20]!r}", param=name
        )
    return raw


def _names(values: dict[str, str], name: str) -> tuple[str, ...]:
    raw = values.get(name, "")
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def _subset(values: dict[str, str], name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    raw = values.get(name, "")
    # Each entry is one of ``allowed`` (the spec's enum): an empty one ("fields=,",
    # "fields=title,,year") is refused, not read as "every field" or dropped.
    if raw and any(not part.strip() for part in raw.split(",")):
        raise InvalidRequest(
            f"{name} has an empty entry; give names separated by single commas, "
            f"from {', '.join(allowed)}",
            param=name,
        )
    chosen = _names(values, name)
    unknown = [part for part in chosen if part not in allowed]
    if unknown:
        raise InvalidRequest(
            f"{name} has unknown value {unknown[0][:20]!r}; choose from {', '.join(allowed)}",
            param=name,
        )
    return chosen


def read_cursor(raw: str) -> tuple[int, int]:
    """The offset and search fingerprint a cursor holds, unchecked; ``InvalidRequest``
    if it is not one this service could have issued."""
    try:
        padded = raw + "=" * (-len(raw) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        return int(data["o"]), int(data["f"])
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidRequest("cursor is not one this service issued", param="cursor") from None


def _decode_cursor(raw: str, fingerprint: int) -> int:
    offset, owner = read_cursor(raw)
    if owner != fingerprint:
        raise InvalidRequest("cursor belongs to a different search", param="cursor")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidRequest("cursor is out of range", param="cursor")
    return offset
