"""Query-string decoding that refuses what a lenient parser would guess at."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl

from reelsearch.errors import InvalidRequest
from reelsearch.search.held import hold_query
from reelsearch.search.query import SearchQuery, parse_search

# Far above any real search; stops a megabyte query string before parsing. Over HTTP
# the front door's bound on the whole request target (a 414, middleware/head_limits.py)
# comes first; this one guards the other callers (the search log's warming, the slow log).
MAX_QUERY_STRING_BYTES = 8192
# Query strings a SearchParser remembers, and the longest it remembers: a real
# search's query string is well under 200 bytes, so the memo holds at most a few MB
# however hostile the traffic (longer ones are parsed every time).
PARSED_SEARCHES = 4096
MAX_REMEMBERED_QUERY_STRING = 512
# A "%" not followed by two hex digits: parse_qsl would keep it as literal text.
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """Decode ``scope["query_string"]`` strictly: invalid UTF-8 is a 400, not U+FFFD."""
    if len(raw) > MAX_QUERY_STRING_BYTES:
        raise InvalidRequest(
            f"the query string is {len(raw)} bytes; the limit is {MAX_QUERY_STRING_BYTES}",
            code="too_long",
        )
    has_escapes = b"%" in raw
    if has_escapes:
        bad = _BAD_PERCENT.search(raw)
        if bad is not None:
            raise InvalidRequest(
                f"the query string has a '%' at byte {bad.start()} that is not followed by "
                "two hex digits; write a literal % as %25",
                code="bad_encoding",
            )
    try:
        text = raw.decode("utf-8")
        if has_escapes:
            return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequest("the query string is not valid UTF-8", code="bad_encoding") from None
    return _plain_pairs(text)


def _plain_pairs(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True)`` for a text without "%" escapes.

    Without escapes there is nothing to unquote but "+" (a space): a split
    and a partition per pair, a fifth of parse_qsl's time on a search's
    query string. Empty pairs are skipped and a pair without "=" has an
    empty value, as there.
    """
    pairs = []
    for part in text.split("&"):
        if part:
            if "+" in part:
                part = part.replace("+", " ")
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


class SearchParser:
    """A search's raw query string into its ``SearchQuery``, remembered for the ones that recur.

    Searches recur (popular titles, and every prefix typed on the way to them), and
    parsing one costs 13-17 µs in process, about a sixth of a cold search's HTTP path;
    a remembered one costs a dictionary lookup. Parsing is a pure function of the
    bytes and the limits, which are fixed per app start, and a ``SearchQuery`` is
    immutable, so one object can serve every request that sends the same bytes. A
    query string that is refused raises ``InvalidRequest`` each time and is not
    remembered (``lru_cache`` stores only returned values).
    """

    __slots__ = ("_remembered", "max_chars", "max_words")

    def __init__(self, max_chars: int, max_words: int, size: int = PARSED_SEARCHES) -> None:
        self.max_chars = max_chars
        self.max_words = max_words
        self._remembered = lru_cache(maxsize=size)(self._parse)

    def __call__(self, raw: bytes) -> SearchQuery:
        if len(raw) > MAX_REMEMBERED_QUERY_STRING:
            return self._parse(raw)
        return self._remembered(raw)

    def _parse(self, raw: bytes) -> SearchQuery:
        # Out of the collector's view while the LRU keeps it (search/held.py).
        return hold_query(parse_search(
            query_pairs(raw), max_query_chars=self.max_chars, max_query_words=self.max_words
        ))  # fmt: skip
