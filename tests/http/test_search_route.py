"""``/v1/search`` as a plain ASGI endpoint (http/search_route.py) answers as the function
endpoint did: the same headers, validators, codings, errors and stage metrics.

Each test holds one thing the shortcut (no Request, a precomputed header block for a
search computed with the cache off) must not change, on a real app over the small catalog.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from conftest import TestClient
from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.caching import NOT_ACCEPTABLE_BODY
from reelsearch.http.params import query_pairs
from reelsearch.http.search_cache import render_search
from reelsearch.search.query import parse_search

SECURITY = ("x-content-type-options", "referrer-policy", "x-frame-options", "server")
ADMIN_TOKEN = "search-route-admin-token" * 2


@pytest.fixture
def make_client(small_copy: Settings) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        # With the cache on, a first sighting is stored at once: the tests of cached misses
        # are about stored answers (the doorkeeper's own: test_doorkeeper.py).
        chosen = {"admin_token": ADMIN_TOKEN, "cache": "off", "compress_min_bytes": 200,
                  "cache_doorkeeper": False}  # fmt: skip
        client = TestClient(create_app(replace(small_copy, **{**chosen, **overrides})))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_a_cold_search_sends_the_headers_of_an_entry(
    make_client: Callable[..., TestClient],
) -> None:
    """With the cache off, a search's answer is the engine's result rendered, with a strong
    ETag of its bytes, the deployment's Cache-Control, Vary, a Server-Timing, the security
    headers and the request id, in the order an entry's header block has them."""
    client = make_client(http_max_age=60, http_stale_while_revalidate=0)
    response = client.get(
        "/v1/search?q=alien&limit=3",
        headers={"X-Request-ID": "route-1", "accept-encoding": "identity"},
    )
    engine = client.app.state.engine  # type: ignore[attr-defined]
    query = parse_search(query_pairs(b"q=alien&limit=3"))
    expected = render_search(client.portal.call(engine.search, query))  # type: ignore[union-attr]
    names = [name for name in response.headers if name not in SECURITY and name != "date"]
    assert (200, expected) == (response.status_code, response.content)
    assert [
        "content-type", "content-length", "etag", "cache-control", "vary", "server-timing",
        "x-request-id",
    ] == names  # fmt: skip
    assert re.fullmatch(r'"[0-9a-f]{16}"', response.headers["etag"])
    assert ("application/json", "public, max-age=60", "accept-encoding", "route-1") == (
        response.headers["content-type"],
        response.headers["cache-control"],
        response.headers["vary"],
        response.headers["x-request-id"],
    )
    assert all(response.headers.get(name) for name in SECURITY), response.headers


def test_a_cold_search_answers_a_validator_with_304(
    make_client: Callable[..., TestClient],
) -> None:
    """If-None-Match with the ETag of a cold search's answer gets a bodiless 304 carrying
    the ETag, Cache-Control and Vary only (as for a stored entry)."""
    client = make_client()
    first = client.get("/v1/search?q=alien")
    again = client.get("/v1/search?q=alien", headers={"if-none-match": first.headers["etag"]})
    assert (304, b"", first.headers["etag"]) == (
        again.status_code,
        again.content,
        again.headers["etag"],
    )
    assert "content-type" not in again.headers and "server-timing" not in again.headers


def test_a_cold_search_is_compressed_for_a_client_that_asks(
    make_client: Callable[..., TestClient],
) -> None:
    """Accept-Encoding: gzip gets the gzip variant of the same body and an ETag naming the
    coding; the identity answer's bytes are what it decompresses to."""
    client = make_client()
    plain = client.get("/v1/search?q=the", headers={"accept-encoding": "identity"})
    packed = client.get("/v1/search?q=the", headers={"accept-encoding": "gzip"})
    # The client decompresses: the bytes it reads are the identity body.
    assert ("gzip", plain.headers["etag"][:-1] + '-gzip"', plain.content) == (
        packed.headers["content-encoding"],
        packed.headers["etag"],
        packed.content,
    )
    assert int(packed.headers["content-length"]) < len(plain.content)


def test_head_of_a_cold_search_has_the_headers_and_no_body(
    make_client: Callable[..., TestClient],
) -> None:
    """HEAD gets the GET's status, ETag and Content-Length, without the body."""
    client = make_client()
    got = client.get("/v1/search?q=alien")
    head = client.head("/v1/search?q=alien")
    assert (200, b"", got.headers["etag"], got.headers["content-length"]) == (
        head.status_code,
        head.content,
        head.headers["etag"],
        head.headers["content-length"],
    )


def _headers_but_timing(response: Any) -> list[tuple[str, str]]:
    """The response's headers in order, less those that differ per request."""
    varying = ("server-timing", "x-request-id", "date")
    return [(k, v) for k, v in response.headers.multi_items() if k not in varying]


def test_a_cached_miss_is_sent_as_its_later_hits_are(
    make_client: Callable[..., TestClient],
) -> None:
    """With the cache on, the request that computes a search (the lean send of its own
    miss) gets the bytes and the header block (names, order, values) that the next
    request, answered from L1 by the fast path, gets; Last-Modified included."""
    client = make_client(cache="memory")
    cache = client.app.state.result_cache  # type: ignore[attr-defined]
    miss = client.get("/v1/search?q=alien&limit=3")
    hit = client.get("/v1/search?q=alien&limit=3")
    assert (1, 1) == (cache.counters.misses, cache.counters.fast_path)
    assert miss.content == hit.content
    assert _headers_but_timing(hit) == _headers_but_timing(miss)
    assert "last-modified" in miss.headers
    assert "server-timing" in miss.headers


def test_a_cached_miss_builds_no_header_block_in_its_entry(
    make_client: Callable[..., TestClient],
) -> None:
    """A miss sent in identity to an unconditional request leaves the stored entry's
    per-coding header blocks unbuilt (most misses are never asked again); the first hit
    builds the identity one, and HEAD of a miss has the GET's headers and no body."""
    client = make_client(cache="memory")
    cache = client.app.state.result_cache  # type: ignore[attr-defined]
    plain = {"accept-encoding": "identity"}  # what wrk and many API clients send: nothing
    client.get("/v1/search?q=heat", headers=plain)
    (entry,) = cache.memory.held_entries()
    assert {} == entry.wire
    client.get("/v1/search?q=heat", headers=plain)
    assert ["identity"] == list(entry.wire)
    head = client.head("/v1/search?q=alien", headers=plain)
    got = client.get("/v1/search?q=alien", headers=plain)
    assert (b"", _headers_but_timing(got)) == (head.content, _headers_but_timing(head))


def test_a_cached_miss_answers_validators_and_codings_as_a_hit(
    make_client: Callable[..., TestClient],
) -> None:
    """The request that computes a search still gets a 304 for a matching If-None-Match
    and the gzip variant when it asks for gzip: only the plain case takes the lean send."""
    client = make_client(cache="memory")
    etag = client.get("/v1/search?q=alien&limit=3").headers["etag"]
    client.app.state.result_cache.memory.drop_all()  # type: ignore[attr-defined]
    again = client.get("/v1/search?q=alien&limit=3", headers={"if-none-match": etag})
    client.app.state.result_cache.memory.drop_all()  # type: ignore[attr-defined]
    packed = client.get("/v1/search?q=the", headers={"accept-encoding": "gzip"})
    assert 304 == again.status_code
    assert ("gzip", 2) == (packed.headers["content-encoding"],
                           client.app.state.result_cache.counters.misses - 1)  # fmt: skip


@pytest.mark.parametrize(
    ("query_string", "status", "code", "param"),
    [
        ("q=alien&limit=0", 400, "invalid", "limit"),
        ("q=alien&limit=abc", 400, "invalid", "limit"),
        ("q=alien&colour=red", 400, "unknown_parameter", "colour"),
        ("q=alien&q=heat", 400, "invalid", "q"),
        ("q=%ZZ", 400, "bad_encoding", None),
        ("q=%FF", 400, "bad_encoding", None),
        ("q=alien&explain=true", 403, "forbidden", None),
    ],  # fmt: skip
)
def test_errors_are_answered_by_the_apps_handlers(
    make_client: Callable[..., TestClient],
    query_string: str,
    status: int,
    code: str,
    param: str | None,
) -> None:
    """A bad search is the app's JSON error (status, code, parameter named), with the
    security headers and the request id, as the function endpoint's was."""
    client = make_client()
    response = client.get(f"/v1/search?{query_string}", headers={"X-Request-ID": "bad-1"})
    error = response.json()["error"]
    assert (status, code) == (response.status_code, error["code"])
    if param is not None:
        assert param == error["param"]
    assert "bad-1" == response.headers["x-request-id"]
    assert all(response.headers.get(name) for name in SECURITY), response.headers


def test_explain_still_needs_and_takes_the_admin_token(
    make_client: Callable[..., TestClient],
) -> None:
    """explain=true with the admin token answers with each hit's score parts."""
    client = make_client()
    response = client.get(
        "/v1/search?q=alien&explain=true", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert 200 == response.status_code
    assert all("explain" in hit for hit in response.json()["hits"])


EXPLAIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("cache", ["off", "memory"])
@pytest.mark.parametrize("accept", ["identity;q=0", "*;q=0", "identity;q=0, compress"])
def test_an_explained_search_refuses_what_a_search_refuses(
    make_client: Callable[..., TestClient], cache: str, accept: str
) -> None:
    """explain=true negotiates the content coding as every search does: a client that
    accepts no coding the server offers (identity;q=0, or *;q=0 naming none) gets the
    same 406 JSON body as the search without explain, not an identity body it refused."""
    client = make_client(cache=cache)
    plain = client.get("/v1/search?q=the", headers={"accept-encoding": accept})
    explained = client.get(
        "/v1/search?q=the&explain=true", headers={"accept-encoding": accept, **EXPLAIN}
    )
    assert (406, NOT_ACCEPTABLE_BODY) == (plain.status_code, plain.content)
    assert (406, NOT_ACCEPTABLE_BODY) == (explained.status_code, explained.content)
    assert "application/json" == explained.headers["content-type"]


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_an_explained_search_is_compressed_as_a_search_is(
    make_client: Callable[..., TestClient], coding: str
) -> None:
    """explain=true to a client that accepts a coding: a body over the threshold is sent in
    it (decoding to the identity body), with Vary: Accept-Encoding, and marked for its
    requester alone (an admin's answer: no shared cache may store it)."""
    client = make_client()
    plain = client.get("/v1/search?q=the&explain=true",
                       headers={"accept-encoding": "identity", **EXPLAIN})  # fmt: skip
    packed = client.get("/v1/search?q=the&explain=true",
                        headers={"accept-encoding": coding, **EXPLAIN})  # fmt: skip
    assert (200, 200) == (plain.status_code, packed.status_code)
    assert all("explain" in hit for hit in orjson.loads(plain.content)["hits"])
    # The client decompresses: the bytes it reads are the identity body.
    assert (coding, plain.content) == (packed.headers["content-encoding"], packed.content)
    assert int(packed.headers["content-length"]) < len(plain.content)
    assert "content-encoding" not in plain.headers
    for response in (plain, packed):
        assert ("accept-encoding", "private, no-store") == (
            response.headers["vary"],
            response.headers["cache-control"],
        )


def test_a_small_explained_search_is_sent_as_identity(
    make_client: Callable[..., TestClient],
) -> None:
    """Under the compression threshold an explained search is sent uncompressed even to a
    client that accepts gzip, as a search's answer is."""
    client = make_client(compress_min_bytes=100_000)
    response = client.get("/v1/search?q=the&explain=true",
                          headers={"accept-encoding": "gzip", **EXPLAIN})  # fmt: skip
    assert (200, None) == (response.status_code, response.headers.get("content-encoding"))
    assert len(response.content) == int(response.headers["content-length"]) < 100_000


SMALL_GENRES = (
    "Action, Adventure, Animation, Biography, Comedy, Crime, Documentary, Drama, Fantasy, "
    "History, Horror, Musical, Mystery, Romance, Sci-Fi, Short, Sport, Thriller, War"
)


@pytest.mark.parametrize("cache", ["off", "memory"])
@pytest.mark.parametrize("path", ["/v1/search", "/v1/search/export"])
def test_an_unknown_genre_is_named_as_typed(
    make_client: Callable[..., TestClient], cache: str, path: str
) -> None:
    """A genre the catalog lacks is a 400 naming it as the client typed it (not the
    lowercased form the cache key is made of), with the result cache on or off; a known
    genre in another case is still accepted."""
    client = make_client(cache=cache)
    response = client.get(f"{path}?q=alien&genres=Comedy,DraMAA")
    expected = {
        "code": "invalid",
        "message": f"genre 'DraMAA' is not in the catalog; known: {SMALL_GENRES}",
        "param": "genres",
    }
    assert (400, expected) == (response.status_code, response.json()["error"])
    assert 200 == client.get(f"{path}?q=alien&genres=HORROR").status_code


def test_a_cold_search_reports_its_stages(make_client: Callable[..., TestClient]) -> None:
    """The stage histograms of /v1/search count parse, the engine's own stages and engine
    once per cold search."""
    client = make_client()
    for _ in range(2):
        assert 200 == client.get("/v1/search?q=alien").status_code
    text = client.get("/metrics").text
    counts = {
        stage: float(value)
        for stage, value in re.findall(
            r'reelsearch_search_stage_seconds_count\{route="/v1/search",stage="(\w+)"\} (\S+)',
            text,
        )
    }
    assert {"parse": 2.0, "plan": 2.0, "database": 2.0, "ranking": 2.0, "engine": 2.0} == counts


def test_query_pairs_without_escapes_match_parse_qsl() -> None:
    """Query strings without "%" (split by hand) decode as parse_qsl does: "+" is a space,
    empty pairs are skipped, a pair without "=" has an empty value, ";" is plain text."""
    rng = random.Random(10)
    texts = ["", "&", "a", "a=", "=b", "a=b=c", "q=a+b&limit=10", "&&a&&b=", "+=+", ";a=b;c"]
    texts += [
        "".join(rng.choice("ab=&+ ;é") for _ in range(rng.randint(0, 12))) for _ in range(5000)
    ]
    for text in texts:
        assert parse_qsl(text, keep_blank_values=True) == query_pairs(text.encode()), text


def test_query_string_bodies_are_json(make_client: Callable[..., TestClient]) -> None:
    """A search whose q holds "+" and escapes finds what the decoded words find."""
    client = make_client()
    escaped = client.get("/v1/search?q=star%20wars+hope")
    plain = client.get("/v1/search", params={"q": "star wars hope"})
    assert orjson.loads(plain.content) == orjson.loads(escaped.content)
