"""Schemathesis hooks: leave out the generated valid requests that the API refuses by
rules OpenAPI cannot state (each rule is in the parameter's description).

Loaded by the schemathesis run in test_contract.py (SCHEMATHESIS_HOOKS). Only
positive cases are filtered: every invalid case generated is still sent.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from reelsearch.search.query import parse_text

# The default REELSEARCH_MAX_QUERY_WORDS the live server runs with.
MAX_QUERY_WORDS = 32


@schemathesis.serializer("application/x-ndjson")
def ndjson(context: Any, value: Any) -> bytes:
    """POST /v1/movies/bulk takes JSON lines: a generated string is sent as its UTF-8 bytes,
    any other value (negative cases: numbers, null, lists) as its JSON."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return value if isinstance(value, bytes) else json.dumps(value, default=str).encode()


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """False for a valid-by-schema request that breaks a rule between values."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not case.query:
        return True
    return not breaks_a_cross_value_rule(case.query)


def breaks_a_cross_value_rule(query: dict[str, Any]) -> bool:
    # A cursor is only valid as a previous page's next_cursor: no generator can make one.
    if query.get("cursor") not in (None, ""):
        return True
    years = [_number(query.get(name)) for name in ("year_from", "year_to")]
    if years[0] is not None and years[1] is not None and years[0] > years[1]:
        return True
    q = query.get("q")
    if isinstance(q, str):
        words, _, excluded, _ = parse_text(q)
        if (excluded and not words) or len(words) + len(excluded) > MAX_QUERY_WORDS:
            return True
    return False


def _number(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None
