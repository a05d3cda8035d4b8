"""The HTTP contract of the v1 API, through starlette's TestClient (lifespan running)."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.http.app import create_app
from reelsearch.http.params import MAX_QUERY_STRING_BYTES, query_pairs
from reelsearch.http.routes import ROUTES
from reelsearch.search.query import HIT_FIELDS, MOVIE_FIELDS, SEARCH_PARAMS

Client = Any  # starlette.testclient.TestClient, imported by conftest
ADMIN_TOKEN = "s3cret-token-" * 3  # 36 characters: the minimum is 32


def assert_error(response: Any, status: int, param: str | None = "any") -> dict[str, Any]:
    """A JSON error body of the documented shape, with ``status`` (and ``param`` if given)."""
    assert (status, "application/json") == (
        response.status_code,
        response.headers["content-type"],
    ), response.text
    body = response.json()
    assert ["error"] == list(body)
    error = body["error"]
    assert {"code", "message", "param"} == set(error)
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if param != "any":
        assert param == error["param"]
    return error  # type: ignore[no-any-return]


# -- response shapes -------------------------------------------------------------------------


def test_search_response_shape(client: Client) -> None:
    """A search answers hits, total, total_is_exact, next_cursor, no facets; the server's
    time is in Server-Timing (not the body, so one query's body is the same everywhere)."""
    response = client.get("/v1/search", params={"q": "star", "limit": 2})
    assert (200, "application/json") == (response.status_code, response.headers["content-type"])
    body = response.json()
    assert ["hits", "total", "total_is_exact", "next_cursor"] == list(body)
    assert ["Star", "Star Wars"] == [hit["title"] for hit in body["hits"]]
    assert list(HIT_FIELDS) == list(body["hits"][0])
    assert (3, True) == (body["total"], body["total_is_exact"])
    assert isinstance(body["next_cursor"], str)
    name, _, duration = response.headers["server-timing"].partition(";dur=")
    assert "app" == name and float(duration) >= 0


def test_search_facets_only_when_asked(client: Client) -> None:
    """'facets' adds a facets object with the asked facets only."""
    body = client.get("/v1/search", params={"q": "psycho", "facets": "decade"}).json()
    assert {"decade": {"1960": 1, "1990": 1}} == body["facets"]
    assert ["hits", "total", "total_is_exact", "facets", "next_cursor"] == list(body)


def test_search_cursor_round_trip(client: Client) -> None:
    """next_cursor fetches the next page over HTTP; the last page has next_cursor null."""
    first = client.get("/v1/search", params={"q": "the", "limit": 3}).json()
    second = client.get(
        "/v1/search", params={"q": "the", "limit": 3, "cursor": first["next_cursor"]}
    ).json()
    assert 5 == len({h["id"] for h in first["hits"] + second["hits"]})
    assert None is second["next_cursor"]


def test_search_fields_over_http(client: Client) -> None:
    """'fields' trims every hit to the listed fields."""
    body = client.get("/v1/search", params={"q": "toy story", "fields": "title,year"}).json()
    assert [
        {"title": "Toy Story", "year": 1995},
        {"title": "Toy Story 3", "year": 2010},
        {"title": "Toy Story 2", "year": 1999},
    ] == body["hits"]


@pytest.mark.parametrize("fields", [",", "title,", "title,,year", " , "])
def test_search_fields_with_an_empty_entry_is_a_400(client: Client, fields: str) -> None:
    """An empty entry in 'fields' ("fields=," made every field, "title," dropped it) is a
    400 naming the parameter, as the spec's enum of field names says (schemathesis found
    "fields=," answered 200)."""
    response = client.get("/v1/search", params={"q": "toy story", "fields": fields})
    assert 400 == response.status_code
    body = response.json()
    assert "fields" == body["error"]["param"]
    assert body["error"]["message"].startswith("fields has an empty entry")


def test_movie_by_id(client: Client) -> None:
    """/v1/movies/{id} returns the movie with its details."""
    response = client.get("/v1/movies/4")
    assert 200 == response.status_code
    body = response.json()
    assert ("Amélie", ["Le fabuleux destin d'Amélie Poulain"]) == (
        body["title"],
        body["alt_titles"],
    )
    assert {*MOVIE_FIELDS, "original_title", "alt_titles", "updated_at"} == set(body)


@pytest.mark.parametrize("movie_id", ["0", "31", "999999999999999999"])
def test_movie_not_found(client: Client, movie_id: str) -> None:
    """An id with no movie is a 404 error body."""
    assert "not_found" == assert_error(client.get(f"/v1/movies/{movie_id}"), 404)["code"]


@pytest.mark.parametrize(
    "movie_id",
    [
        "abc",
        "-1",
        "1.5",
        "1e3",
        "9999999999999999999",
        "%20",
        "0x1",
        "%C2%B2",
        "%EF%BC%91",
        "%D9%A1",
    ],
    ids=[
        "abc",
        "negative",
        "decimal",
        "exponent",
        "too-long",
        "space",
        "hex",
        "superscript-2",
        "fullwidth-1",
        "arabic-indic-1",
    ],
)
def test_movie_bad_id_is_400(client: Client, movie_id: str) -> None:
    """An id that is not a plain ASCII whole number is a 400 naming 'id', never a 500."""
    assert_error(client.get(f"/v1/movies/{movie_id}"), 400, param="id")


def test_autocomplete(client: Client) -> None:
    """/v1/autocomplete answers suggestions of id, title and year."""
    response = client.get("/v1/autocomplete", params={"q": "the mat", "limit": 2})
    assert 200 == response.status_code
    assert {
        "suggestions": [
            {"id": 1, "title": "The Matrix", "year": 1999},
            {"id": 2, "title": "The Matrix Reloaded", "year": 2003},
        ]
    } == response.json()


def test_autocomplete_empty_query(client: Client) -> None:
    """No text, no suggestions."""
    assert {"suggestions": []} == client.get("/v1/autocomplete", params={"q": ""}).json()


@pytest.mark.parametrize(
    ("query", "param"),
    [("q=star&sort=year", "sort"), ("q=star&limit=0", "limit"), ("q=a&q=b", "q")],
)
def test_autocomplete_bad_input(client: Client, query: str, param: str) -> None:
    """Autocomplete refuses search-only parameters and bad limits."""
    assert_error(client.get(f"/v1/autocomplete?{query}"), 400, param=param)


def test_health(client: Client) -> None:
    """/health is a constant JSON ok."""
    response = client.get("/health")
    assert (200, {"status": "ok"}) == (response.status_code, response.json())
    assert "application/json" == response.headers["content-type"]


def test_ready(client: Client) -> None:
    """/ready says ready, and nothing about the catalog to a client without the token."""
    response = client.get("/ready")
    assert (200, {"status": "ready"}) == (response.status_code, response.json())


def test_ready_details_for_the_admin_token(admin_client: Client) -> None:
    """With the admin token /ready adds each dependency's state, the catalog version and size."""
    response = admin_client.get("/ready", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    up = {"state": "up", "required": True, "reason": "ok"}
    expected = {"status": "ready", "dependencies": {"catalog": up, "migrations": up},
                "catalog_version": 1, "movies": 30}  # fmt: skip
    assert (200, expected) == (response.status_code, response.json())


def test_openapi_lists_every_route(client: Client) -> None:
    """/openapi.json describes every API route and every search parameter."""
    spec = client.get("/openapi.json").json()
    assert "3.1.0" == spec["openapi"]
    routes = {route.path for route in ROUTES} - {"/openapi.json"}
    assert routes == set(spec["paths"])
    search_params = {p["name"] for p in spec["paths"]["/v1/search"]["get"]["parameters"]}
    assert set(SEARCH_PARAMS) == search_params
    autocomplete = {p["name"] for p in spec["paths"]["/v1/autocomplete"]["get"]["parameters"]}
    assert {"q", "limit"} == autocomplete


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("POST", "/v1/search", 405), ("POST", "/v1/movies/1", 405)],
)
def test_unknown_route_or_method_is_a_json_error(
    client: Client, method: str, path: str, status: int
) -> None:
    """Unknown paths and methods answer the same JSON error shape."""
    assert_error(client.request(method, path), status, param=None)


# -- bad input: always a 4xx JSON error, never a 500 -----------------------------------------

BAD_SEARCHES = [
    ("q=star&colour=red", "colour", "unknown_parameter"),
    ("q=star&q=wars", "q", None),
    ("q=star&limit=1&limit=2", "limit", None),
    ("limit=0", "limit", None),
    ("limit=101", "limit", None),
    ("limit=abc", "limit", None),
    ("limit=1.5", "limit", None),
    ("offset=-1", "offset", None),
    ("offset=10001", "offset", None),
    ("year_from=2000&year_to=1990", "year_from", None),
    ("year_from=99999", "year_from", None),
    ("year_to=19x9", "year_to", None),
    ("min_rating=nan", "min_rating", None),
    ("min_rating=NaN", "min_rating", None),
    ("min_rating=inf", "min_rating", None),
    ("min_rating=11", "min_rating", None),
    ("min_rating=-0.1", "min_rating", None),
    ("min_votes=-5", "min_votes", None),
    ("min_votes=99999999999999999999", "min_votes", None),
    ("genres=Western", "genres", None),
    ("genres=Drama&genres_mode=some", "genres_mode", None),
    ("kind=podcast", "kind", None),
    ("sort=popularity", "sort", None),
    ("sort=-relevance", "sort", None),
    ("fields=id,plot", "fields", None),
    ("facets=mpaa", "facets", None),
    ("cursor=not-a-cursor", "cursor", None),
    ("q=" + "a" * 257, "q", None),
    # 228 Hangul syllables normalize to one word of 2,052 bytes (each becomes three jamo).
    ("q=" + "%ED%95%9C" * 228, "q", None),
    ("q=" + "%E3%8C%80" * 200, "q", None),  # each "㌀" normalizes to 12 bytes
    ("q=%00", "q", None),
    ("q=star%0Awars", "q", None),
    ("q=%1B%5B31m", "q", None),
    ("q=%FF", None, "bad_encoding"),
    ("q=%C3%28", None, "bad_encoding"),
    ("q=%ED%A0%80", None, "bad_encoding"),
    # A query string over 8 KiB makes the request target too long: a 414 before the
    # search is parsed (tests/http/test_head_limits.py).
]


@pytest.mark.parametrize(
    ("query", "param", "code"), BAD_SEARCHES, ids=[q[:40] for q, _, _ in BAD_SEARCHES]
)
def test_bad_search_input_is_a_400(
    client: Client, query: str, param: str | None, code: str | None
) -> None:
    """Each kind of bad input is a 400 JSON error naming the parameter at fault."""
    error = assert_error(client.get(f"/v1/search?{query}"), 400, param=param)
    if code is not None:
        assert code == error["code"]


def test_query_pairs_refuses_raw_invalid_utf8() -> None:
    """A raw non-UTF-8 byte in the query string is an InvalidRequest, not U+FFFD."""
    for raw in (b"q=\xff", b"q=caf\xe9", b"q=%FF", b"\xff=1"):
        with pytest.raises(InvalidRequest) as info:
            query_pairs(raw)
        assert "bad_encoding" == info.value.code
    assert [("q", "café"), ("limit", "")] == query_pairs(b"q=caf%C3%A9&limit=")
    assert [("q", "a b+c")] == query_pairs(b"q=a+b%2Bc")


def test_query_pairs_refuses_a_huge_query_string() -> None:
    """Query strings over the byte limit are refused before parsing."""
    with pytest.raises(InvalidRequest) as info:
        query_pairs(b"q=" + b"a" * MAX_QUERY_STRING_BYTES)
    assert "too_long" == info.value.code


def call_raw(client: Client, path: str, query_string: bytes) -> tuple[int, bytes]:
    """Send one GET with a query string of raw bytes straight to the ASGI app."""
    app: Starlette = client.app
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        with anyio.fail_after(10):
            await app(scope, receive, send)

    client.portal.call(run)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize("raw", [b"q=\xff", b"q=caf\xe9", b"q=\xc3\x28&limit=1"])
def test_raw_invalid_utf8_bytes_in_scope_are_a_400(client: Client, raw: bytes) -> None:
    """Raw bytes that are not UTF-8 in the ASGI query string give a 400 bad_encoding."""
    status, body = call_raw(client, "/v1/search", raw)
    assert (400, "bad_encoding") == (status, json.loads(body)["error"]["code"])


def test_raw_valid_utf8_bytes_in_scope_are_searched(client: Client) -> None:
    """Raw (unescaped) UTF-8 in the query string is decoded and searched."""
    status, body = call_raw(client, "/v1/search", "q=amélie&fields=title".encode())
    assert (200, [{"title": "Amélie"}]) == (status, json.loads(body)["hits"])


@pytest.mark.parametrize(
    "q",
    ['"', '""', '"star', "*", "star*", "NEAR(star wars)", "NEAR(", "AND", "star AND wars",
     "OR", "NOT", "-", "- star", "^", "^star", ":", "title:star", "norm_title:star", "(", ")",
     "{star}", "star + wars", "'; DROP TABLE movies; --", "1 OR 1=1", "\\", "%", "_"],
)  # fmt: skip
def test_fts_syntax_and_sql_in_q_are_plain_text(client: Client, q: str) -> None:
    """FTS5 operators and SQL fragments in q are searched as words: 200, sane hits."""
    response = client.get("/v1/search", params={"q": q})
    assert 200 == response.status_code, response.text
    body = response.json()
    assert len(body["hits"]) <= 10
    assert body["total"] >= len(body["hits"])


@pytest.mark.parametrize(
    ("q", "first"),
    [
        ('"star wars"', "Star Wars"),
        ("star*", "Star"),
        ("(star wars)", "Star Wars"),
        ("^star", "Star"),
        ("star: wars", "Star Wars"),
        ("{star} wars", "Star Wars"),
    ],
)
def test_fts_operators_are_ignored_not_obeyed(client: Client, q: str, first: str) -> None:
    """FTS5 operator characters are dropped: the words around them are what is searched.
    Only reelsearch's own operators ("phrase" and -word) mean something."""
    body = client.get("/v1/search", params={"q": q}).json()
    assert first == body["hits"][0]["title"]


@pytest.mark.parametrize(
    ("q", "titles"),
    [
        ("{star} -wars", ["Star", "Star Trek"]),
        ("star -wars", ["Star", "Star Trek"]),
        ('"star wars" -"the empire"', ["Star Wars"]),
    ],
)
def test_exclusion_operator(client: Client, q: str, titles: list[str]) -> None:
    body = client.get("/v1/search", params={"q": q}).json()
    assert titles == [hit["title"] for hit in body["hits"]]


@pytest.mark.parametrize("q", ["-star", "-star -wars", '-"star wars"'])
def test_only_excluded_words_is_a_clear_400(client: Client, q: str) -> None:
    error = assert_error(client.get("/v1/search", params={"q": q}), 400)
    assert error["param"] == "q" and "at least one word" in error["message"]


def test_explain_needs_a_configured_admin_token(client: Client) -> None:
    error = assert_error(client.get("/v1/search", params={"q": "star", "explain": "true"}), 403)
    assert (error["code"], error["param"]) == ("forbidden", "explain")
    assert "REELSEARCH_ADMIN_TOKEN" in error["message"]


@pytest.fixture(scope="module")
def admin_client(small_backend_settings: Settings) -> Iterator[Client]:
    app = create_app(replace(small_backend_settings, admin_token=ADMIN_TOKEN))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("header", [None, "Bearer wrong", "s3cret-token", "Basic s3cret-token"])
def test_explain_refuses_a_wrong_token(admin_client: Client, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = admin_client.get(
        "/v1/search", params={"q": "star", "explain": "true"}, headers=headers
    )
    assert "forbidden" == assert_error(response, 403)["code"]


def test_explain_with_the_admin_token(admin_client: Client) -> None:
    response = admin_client.get(
        "/v1/search",
        params={"q": "star wars", "explain": "true"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert 200 == response.status_code, response.text
    hit = response.json()["hits"][0]
    assert hit["title"] == "Star Wars"
    parts = hit["explain"]
    assert {"rank_key", "text_match", "typos", "exactness", "popularity"} <= set(parts)
    assert parts["text_match"]["tier_name"] == "exact title"


def test_explain_must_be_true_or_false(client: Client) -> None:
    error = assert_error(client.get("/v1/search", params={"q": "x", "explain": "yes"}), 400)
    assert error["param"] == "explain"


def test_fts_keyword_and_is_a_word(client: Client) -> None:
    """'AND' typed alone is the word 'and', not FTS syntax: no error, no match here."""
    body = client.get("/v1/search", params={"q": "AND"}).json()
    assert ([], 0) == (body["hits"], body["total"])


@pytest.mark.parametrize("q", ["", " ", "!!!", "?!.,;", "\t", "   ---   "])
def test_empty_or_punctuation_only_q_browses(client: Client, q: str) -> None:
    """A q without words browses the whole catalog by popularity."""
    body = client.get("/v1/search", params={"q": q}).json()
    assert (30, True) == (body["total"], body["total_is_exact"])
    assert "Interstellar" == body["hits"][0]["title"]


def test_no_parameters_at_all_browses(client: Client) -> None:
    """/v1/search with no parameters is the first page of the whole catalog."""
    body = client.get("/v1/search").json()
    assert (10, 30) == (len(body["hits"]), body["total"])


def test_query_at_the_length_limit_is_accepted(client: Client) -> None:
    """A q of exactly max_query_chars characters is searched."""
    assert 200 == client.get("/v1/search", params={"q": "é" * 256}).status_code


def test_random_queries_never_500(client: Client) -> None:
    """300 seeded random q values (any Unicode, FTS syntax, controls) give 200 or 400, never 500."""
    rng = random.Random(20240601)
    alphabet = (
        list("abcdefghijklmnopqrstuvwxyz0123456789 ")
        + list("\"'*^:-+()[]{}<>;,.!?&|%$#@~`\\/=")
        + ["AND ", "OR ", "NOT ", "NEAR(", "é", "ß", "ø", "ı", "İ", "ﬁ", "Ⅻ", "²", "ǅ", "̈", "​"]
        + ["\t", "\n", "\x00", "\x7f", "\u2028", "😀", "中", "文", "Я", "ا", "\ufeff", "\U000e0041"]
    )
    outcomes: dict[int, list[str]] = {}
    for _ in range(300):
        q = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        params: dict[str, str] = {"q": q}
        if rng.random() < 0.3:
            params["sort"] = rng.choice(["year", "-rating", "votes"])
        if rng.random() < 0.3:
            params["facets"] = "genres,decade"
        response = client.get("/v1/search", params=params)
        outcomes.setdefault(response.status_code, []).append(q)
        if response.status_code == 400:
            assert_error(response, 400)
    assert set() == set(outcomes) - {200, 400}, {k: v[:3] for k, v in outcomes.items()}


def test_random_raw_query_strings_never_500(client: Client) -> None:
    """300 seeded random raw query strings (bytes) straight into the app never give a 500."""
    rng = random.Random(7)
    pieces = [b"q=", b"limit=", b"&", b"=", b"%", b"%F", b"%FF", b"%00", b"\xff", b"\xc3",
              b"a", b"5", b"sort=", b"year", b"cursor=", b"+", b";", b"offset=", b"-1"]  # fmt: skip
    statuses = set()
    for _ in range(300):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        status, _ = call_raw(client, "/v1/search", raw)
        statuses.add(status)
    assert set() == statuses - {200, 400}


def test_sample_search_over_http(sample_client: Client) -> None:
    """On the real sample, 'the mat' finds The Matrix first and facets come back."""
    body = sample_client.get(
        "/v1/search", params={"q": "the mat", "facets": "genres", "limit": 1}
    ).json()
    assert "The Matrix" == body["hits"][0]["title"]
    assert sum(body["facets"]["genres"].values()) >= 1
