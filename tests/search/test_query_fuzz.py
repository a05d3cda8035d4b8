"""Property-based fuzzing of the query parser and the text normalization (hypothesis).

The properties hold for any input a client can send: the parser refuses with
``InvalidRequest`` (a 4xx) or returns a query, never anything else (a 500);
normalizing is idempotent, so a title and a query normalized once or twice
meet on the same words; and the parsed words are a canonical form of ``q``:
parsing them again gives them back.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import importlib
import string
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reelsearch.errors import InvalidRequest
from reelsearch.http.params import query_pairs
from reelsearch.search.normalize import normalize
from reelsearch.search.query import (
    MAX_LIMIT,
    SEARCH_PARAMS,
    SearchQuery,
    parse_autocomplete,
    parse_search,
    parse_text,
)

# No example database on disk (the suite runs from clean trees and in parallel
# worktrees), no per-example deadline (the machine is shared and noisy), and
# enough examples to find the cases below while the module stays within seconds.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text a person or an attacker may type: any code point but surrogates (a
# decoded query string can't hold them), weighted towards the awkward ones.
_AWKWARD = "\ufdfa\ufb03\u0130\u1e9e\u2126\u212b\u00df\u0345\u2163\u24b6\u210c'\u2019&-\"% _\t"
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
awkward_text = st.text(st.sampled_from(_AWKWARD + "aZ09 é"), max_size=40)
query_text = st.one_of(any_text, awkward_text)

# Values in the shape of each parameter, and anything at all.
numberish = st.one_of(
    st.integers(-(10**25), 10**25).map(str),
    st.text(string.digits + "+-_. eE", max_size=25),
    st.sampled_from(["", "0", "1_0", "%2B5", "\u0665", "\uff15", "inf", "nan", "1e309"]),
)
listish = st.lists(st.sampled_from(["genres", "decade", "title", "id", "Drama", "", " "]))
param_value = st.one_of(
    query_text,
    numberish,
    listish.map(",".join),
    st.sampled_from(["true", "false", "any", "all", "-year", "relevance", "eyJvIjoxMH0"]),
)
param_key = st.one_of(st.sampled_from(sorted(SEARCH_PARAMS)), st.text(max_size=10))
param_pairs = st.lists(st.tuples(param_key, param_value), max_size=8)


@FUZZ
@given(param_pairs)
@example([("q", "\ufdfa" * 256)])
@example([("q", "a" * 512)])
@example([("limit", "1_0"), ("offset", "99999999999999999999999")])
@example([("cursor", "eyJvIjoiIn0"), ("q", "x")])
@example([("q", "-"), ("q", "x")])
def test_parse_search_refuses_with_invalid_request_or_returns_a_valid_query(
    pairs: list[tuple[str, str]],
) -> None:
    """Any parameters: a SearchQuery within the documented bounds, or InvalidRequest."""
    try:
        query = parse_search(pairs)
    except InvalidRequest as exc:
        assert str(exc)  # a message for the client, never an empty one
        return
    assert isinstance(query, SearchQuery)
    assert 1 <= query.limit <= MAX_LIMIT
    assert 0 <= query.offset
    assert all(word == normalize(word) and word for word in query.words)


@FUZZ
@given(param_pairs)
def test_parse_autocomplete_refuses_with_invalid_request_or_returns_a_query(
    pairs: list[tuple[str, str]],
) -> None:
    """The autocomplete parser shares the search parser's guarantee (q and limit only)."""
    try:
        query = parse_autocomplete(pairs)
    except InvalidRequest:
        return
    assert {"q", "limit"} >= {key for key, _ in pairs}
    assert 1 <= query.limit <= MAX_LIMIT


@FUZZ
@given(st.binary(max_size=200))
@example(b"q=%zz")
@example(b"q=%E2%82")
@example(b"q=%%")
def test_query_string_decoding_refuses_with_invalid_request_or_decodes(raw: bytes) -> None:
    """Any bytes as a query string: decoded pairs, or InvalidRequest (bad UTF-8 or %)."""
    try:
        pairs = query_pairs(raw)
    except InvalidRequest:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in pairs)


@FUZZ
@given(query_text)
def test_a_percent_encoded_q_round_trips_through_the_query_string(text: str) -> None:
    """What a client percent-encodes is what the parser receives, byte for byte."""
    raw = ("q=" + quote(text, safe="")).encode("ascii")
    assert [("q", text)] == query_pairs(raw)


@FUZZ
@given(query_text)
@example("\u210c")  # BLACK-LETTER CAPITAL H: NFKD makes it an upper-case "H"
@example("\U0001f130")  # SQUARED LATIN CAPITAL LETTER A
@example("\ufdfa")  # one code point that NFKD expands into 18 letters and 3 spaces
def test_normalize_is_idempotent(text: str) -> None:
    """Normalizing twice gives what normalizing once gave."""
    once = normalize(text)
    assert once == normalize(once)


@FUZZ
@given(query_text)
def test_normalized_text_is_lower_case_words_separated_by_single_spaces(text: str) -> None:
    """The normalized form has no edge spaces, no double spaces and no upper case."""
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out
    assert out == out.casefold()


@FUZZ
@given(query_text)
def test_the_parsed_words_are_a_canonical_form_of_q(text: str) -> None:
    """Parsing the words of a parse gives the same words back (the form is idempotent)."""
    words, _, _, _ = parse_text(text)
    again, quoted, excluded, _ = parse_text(" ".join(words))
    assert words == again
    assert () == quoted
    assert () == excluded


def test_normalize_drops_marks_and_folds_letters_within_a_bounded_table() -> None:
    """Accents go, letters NFKD keeps whole fold ("Ø" -> "o", "Æ" -> "ae"), other
    scripts stay; the table that remembers each character met stops growing at
    its bound, and a character met past it is still normalized right."""
    module = importlib.import_module("reelsearch.search.normalize")
    assert "amelie oe ae o l th" == normalize("Amélie Œ Æ Ø Ł Þ")
    assert "нако ратумо" == normalize("нако ратумо")
    assert "カロ スロン" == normalize("カロ スロン")
    bound = module._REMEMBERED_CHARACTERS
    many = "".join(chr(code) for code in range(0x10000, 0x10000 + bound + 1000))
    normalize(many)
    assert len(module._FOLD_TABLE) <= bound
    assert "e\u9fa5e" == normalize("é\u9fa5É")
