"""HTTP caching of searches in one process: stored answers, 304s, codings, export, admin.

A small app per test on a private copy of the small catalog, its cache in the
test's folder; ``engine.search`` is counted to show what was computed.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import brotli
import orjson
import pytest
import zstandard

from conftest import TestClient
from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.middleware.security import SECURITY_HEADERS

Client = TestClient
# The admin token must have at least 32 characters.
ADMIN_TOKEN = "cache-admin-token-" * 2
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


class CountingClient:
    """A TestClient plus the number of searches its engine ran."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.searches = 0
        engine = client.app.state.engine  # type: ignore[attr-defined]
        original = engine.search

        async def counted(query: Any, deadline: Any = None) -> Any:
            self.searches += 1
            return await original(query, deadline)

        engine.search = counted

    @property
    def state(self) -> Any:
        return self.client.app.state  # type: ignore[attr-defined]

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)


@pytest.fixture
def make_client(small_copy: Settings) -> Iterator[Callable[..., CountingClient]]:
    opened: list[TestClient] = []

    def make(**overrides: Any) -> CountingClient:
        # A first sighting is stored at once: these tests are about stored answers (the
        # doorkeeper, which stores a search at its second sighting: test_doorkeeper.py).
        chosen = {"admin_token": ADMIN_TOKEN, "compress_min_bytes": 200, "cache_warm_top": 0,
                  "cache_doorkeeper": False}  # fmt: skip
        settings = replace(small_copy, **{**chosen, **overrides})
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return CountingClient(client)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_repeat_search_is_not_recomputed(make_client: Callable[..., CountingClient]) -> None:
    """The second identical request is answered from L1 (the fast path), not the database."""
    app = make_client()
    first = app.get("/v1/search?q=star")
    second = app.get("/v1/search?q=star")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    assert app.searches == 1
    assert app.state.cache_counters.fast_path == 1


def test_spellings_share_one_answer(make_client: Callable[..., CountingClient]) -> None:
    """Different spellings of one search get the same bytes and ETag from one computation."""
    app = make_client()
    spellings = ["q=Star+Wars", "q=star++wars", "q=STAR%20WARS&limit=10", "limit=10&q=star+wars"]
    answers = [app.get(f"/v1/search?{s}") for s in spellings]
    assert len({a.content for a in answers}) == 1
    assert len({a.headers["etag"] for a in answers}) == 1
    assert app.searches == 1


def test_cursor_from_a_cached_page_works_for_every_spelling(
    make_client: Callable[..., CountingClient],
) -> None:
    """A cursor on a page cached for one spelling fetches the next page for another."""
    app = make_client()
    cursor = app.get("/v1/search?q=toy&limit=1&genres=Comedy,Animation").json()["next_cursor"]
    page = app.get("/v1/search", params={"q": "TOY", "genres": "animation,comedy",
                                         "limit": 1, "cursor": cursor})  # fmt: skip
    assert page.status_code == 200
    two = app.get("/v1/search?q=toy&limit=2&genres=Comedy,Animation").json()["hits"]
    assert [two[1]] == page.json()["hits"]


def test_caching_headers(make_client: Callable[..., CountingClient]) -> None:
    """A search carries a strong ETag, Last-Modified of the import, Cache-Control, Vary."""
    app = make_client(http_max_age=30, http_stale_while_revalidate=120)
    response = app.get("/v1/search?q=alien")
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert response.headers["cache-control"] == "public, max-age=30, stale-while-revalidate=120"
    assert response.headers["vary"] == "accept-encoding"
    assert response.headers["last-modified"] == app.state.result_cache.context.last_modified
    assert response.headers["last-modified"].endswith(" GMT")
    assert response.headers["server-timing"].startswith("app;dur=")
    assert "took_ms" not in response.json()


def test_if_none_match_gives_304_without_recomputing(
    make_client: Callable[..., CountingClient],
) -> None:
    """A matching If-None-Match is a 304 with no body and only the headers RFC 9110 allows
    (besides the security headers and request id every response carries): no
    representation metadata."""
    security = {name.decode() for name, _ in SECURITY_HEADERS} | {"x-request-id"}
    app = make_client()
    etag = app.get("/v1/search?q=alien").headers["etag"]
    for sent in (etag, f'"nope", {etag}', f"W/{etag}", "*"):
        response = app.get("/v1/search?q=alien", headers={"if-none-match": sent})
        assert response.status_code == 304 and response.content == b""
        assert {"etag", "cache-control", "vary"} == set(response.headers) - security
        assert etag == response.headers["etag"]
    assert app.get("/v1/search?q=alien", headers={"if-none-match": '"x"'}).status_code == 200
    assert app.searches == 1
    assert app.state.cache_counters.not_modified == 4


def test_if_modified_since(make_client: Callable[..., CountingClient]) -> None:
    """If-Modified-Since at or after the import is a 304; before it, a 200; INM wins over it."""
    app = make_client()
    last_modified = app.get("/v1/search?q=heat").headers["last-modified"]
    same = {"if-modified-since": last_modified}
    assert app.get("/v1/search?q=heat", headers=same).status_code == 304
    early = {"if-modified-since": "Sat, 01 Jan 2000 00:00:00 GMT"}
    assert app.get("/v1/search?q=heat", headers=early).status_code == 200
    both = {"if-modified-since": last_modified, "if-none-match": '"other"'}
    assert app.get("/v1/search?q=heat", headers=both).status_code == 200
    bad = {"if-modified-since": "yesterday"}
    assert app.get("/v1/search?q=heat", headers=bad).status_code == 200


DECODE = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, br, zstd", "zstd"),  # equal q: the smallest output
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0.8, gzip;q=0.9, zstd;q=0.1", "gzip"),
        ("gzip;q=0", "identity"),
        ("*", "zstd"),
        ("*;q=0.5, br;q=0", "zstd"),
        ("identity", "identity"),
        ("", "identity"),
        ("compress, deflate", "identity"),
        ("identity;q=0, gzip", "gzip"),
        ("identity;q=0.9, gzip;q=0.5", "identity"),  # ranked higher explicitly
    ],
)
def test_content_coding_negotiation(
    make_client: Callable[..., CountingClient], accept: str, chosen: str
) -> None:
    """The client's q-values choose the coding; q=0 refuses one; every coding decodes alike."""
    app = make_client()
    plain = app.get("/v1/search?q=a&limit=30", headers={"accept-encoding": "identity"})
    response = app.client.get("/v1/search?q=a&limit=30", headers={"accept-encoding": accept})
    assert response.status_code == 200
    coding = response.headers.get("content-encoding", "identity")
    assert chosen == coding
    raw = response.read() if coding == "identity" else response.content
    assert len(plain.content) > 200
    if coding == "identity":
        assert plain.content == raw
    assert response.headers["etag"] == (
        plain.headers["etag"] if coding == "identity"
        else plain.headers["etag"][:-1] + f'-{coding}"'
    )  # fmt: skip


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_compressed_bodies_decode_to_the_same_bytes(
    make_client: Callable[..., CountingClient], coding: str
) -> None:
    """Each coding's body decompresses to the identity body, and is computed once per entry."""
    import httpx

    app = make_client()
    plain = app.get("/v1/search?q=a&limit=30", headers={"accept-encoding": "identity"}).content
    transport = httpx.Client(transport=app.client._transport, base_url="http://testserver")  # noqa: SLF001
    with transport.stream("GET", "/v1/search?q=a&limit=30",
                          headers={"accept-encoding": coding}) as response:  # fmt: skip
        wire = b"".join(response.iter_raw())
    assert coding == response.headers["content-encoding"]
    assert plain == DECODE[coding](wire)
    assert int(response.headers["content-length"]) == len(wire) < len(plain)
    assert app.state.cache_counters.bytes_saved >= len(plain) - len(wire)


def test_nothing_acceptable_is_406(make_client: Callable[..., CountingClient]) -> None:
    """identity;q=0 with no offered coding acceptable is a 406 JSON error, not a guess."""
    app = make_client()
    response = app.get("/v1/search?q=a&limit=30",
                       headers={"accept-encoding": "identity;q=0, compress"})  # fmt: skip
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"


@pytest.mark.parametrize("path", ["/v1/search?q=a&limit=30", "/v1/search/export?q=a"])
def test_repeated_accept_encoding_lines_are_one_list(
    make_client: Callable[..., CountingClient], path: str
) -> None:
    """Two Accept-Encoding lines count as their values joined by a comma (RFC 9110 5.3):
    "gzip" then "identity;q=0" is gzip, in either order, not the last line alone (a 406)."""
    app = make_client()
    lines = [("accept-encoding", "gzip"), ("accept-encoding", "identity;q=0")]
    codings = [
        (response.status_code, response.headers.get("content-encoding"))
        for response in (app.get(path, headers=order) for order in (lines, lines[::-1]))
    ]
    expected = [(200, "gzip")] * 2
    assert expected == codings


def test_repeated_if_none_match_lines_are_one_list(
    make_client: Callable[..., CountingClient],
) -> None:
    """An ETag in any of several If-None-Match lines is a match: a 304, in either order."""
    app = make_client()
    etag = app.get("/v1/search?q=alien").headers["etag"]
    lines = [("if-none-match", etag), ("if-none-match", '"other"')]
    statuses = [app.get("/v1/search?q=alien", headers=order).status_code
                for order in (lines, lines[::-1])]  # fmt: skip
    expected = [304, 304]
    assert expected == statuses


def test_small_bodies_are_not_compressed(make_client: Callable[..., CountingClient]) -> None:
    """A body under compress_min_bytes goes as identity even to a gzip client."""
    app = make_client(compress_min_bytes=100_000)
    response = app.get("/v1/search?q=alien", headers={"accept-encoding": "gzip, br"})
    assert "content-encoding" not in response.headers


def test_cache_off_computes_every_time(make_client: Callable[..., CountingClient]) -> None:
    """REELSEARCH_CACHE=off: every request searches; bodies and ETags are still the same."""
    app = make_client(cache="off")
    answers = [app.get("/v1/search?q=star") for _ in range(3)]
    assert app.searches == 3
    assert len({a.content for a in answers}) == 1 and len({a.headers["etag"] for a in answers}) == 1
    assert app.state.result_cache is None


def test_errors_are_not_cached(make_client: Callable[..., CountingClient]) -> None:
    """A request the engine refuses is a 400 each time, never stored or served from the
    cache (a kind the catalog lacks: an unknown genre is refused before the search)."""
    app = make_client()
    for _ in range(2):
        response = app.get("/v1/search?q=alien&kind=nosuchkind")
        assert response.status_code == 400 and response.json()["error"]["param"] == "kind"
    assert app.searches == 2


def test_stale_entry_is_served_and_refreshed_once(
    make_client: Callable[..., CountingClient],
) -> None:
    """Past its freshness an entry is served at once while one background search refreshes it."""
    app = make_client(cache="memory", cache_ttl=0.2, cache_ttl_jitter=0.0,
                      cache_stale_seconds=30)  # fmt: skip
    first = app.get("/v1/search?q=psycho")
    time.sleep(0.3)
    stale = [app.get("/v1/search?q=psycho") for _ in range(3)]
    assert all(s.content == first.content for s in stale)
    deadline = time.monotonic() + 5
    while app.searches < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.searches == 2  # the first computation and exactly one refresh
    counters = app.state.cache_counters
    assert counters.stale_served >= 1 and counters.refreshes == 1


def test_cache_administration_refuses_as_the_documents_api(
    make_client: Callable[..., CountingClient],
) -> None:
    """Without credentials the cache's admin routes answer 401 naming the scheme (RFC 9110
    11.6.1), with a wrong token 403, with the admin token 200, as the documents API does."""
    app = make_client()
    for method, path in (("GET", "/v1/admin/cache"), ("POST", "/v1/admin/cache/invalidate")):
        body = {"all": True} if method == "POST" else None
        anonymous = app.client.request(method, path, json=body)
        wrong = app.client.request(method, path, json=body, headers={"authorization": "Bearer x"})
        right = app.client.request(method, path, json=body, headers=ADMIN)
        assert (
            anonymous.status_code,
            anonymous.headers["www-authenticate"],
            anonymous.json()["error"]["code"],
            wrong.status_code,
            wrong.json()["error"]["code"],
            right.status_code,
        ) == (401, 'Bearer realm="reelsearch"', "unauthorized", 403, "forbidden", 200), path


def test_admin_invalidation(make_client: Callable[..., CountingClient]) -> None:
    """The admin endpoint drops everything, a tag or a key; it needs the admin token."""
    app = make_client()
    app.get("/v1/search?q=alien")
    app.get("/v1/search?q=heat")
    assert app.client.post("/v1/admin/cache/invalidate", json={"all": True}).status_code == 401
    response = app.client.post("/v1/admin/cache/invalidate", json={"tag": "p:alien"},
                               headers=ADMIN)  # fmt: skip
    assert response.status_code == 200 and response.json()["dropped"] >= 1
    app.get("/v1/search?q=alien")
    app.get("/v1/search?q=heat")
    assert app.searches == 3  # alien again; heat still cached
    assert app.client.post("/v1/admin/cache/invalidate", json={"all": True},
                                  headers=ADMIN).status_code == 200  # fmt: skip
    app.get("/v1/search?q=heat")
    assert app.searches == 4
    bad = app.client.post("/v1/admin/cache/invalidate", json={"everything": 1}, headers=ADMIN)
    assert bad.status_code == 400
    stats = app.client.get("/v1/admin/cache", headers=ADMIN).json()
    assert stats["enabled"] is True and [s["name"] for s in stats["levels"]] == ["memory", "disk"]
    assert stats["invalidations"]["admin"] == 2


def test_restart_serves_the_same_answer_from_disk(
    make_client: Callable[..., CountingClient],
) -> None:
    """After a restart the disk level answers with the same bytes and ETag, no search.

    Only searches asked more than once are written to disk: a one-off is computed again.
    """
    first = make_client()
    answer = first.get("/v1/search?q=matrix")
    first.get("/v1/search?q=Matrix")  # asked again (another spelling): now worth a disk write
    first.get("/v1/search?q=heat")  # asked once
    second = make_client()  # a new process's app on the same catalog and disk cache
    again = second.get("/v1/search?q=matrix")
    assert (answer.content, answer.headers["etag"]) == (again.content, again.headers["etag"])
    assert second.searches == 0 and second.state.cache_counters.hits["disk"] == 1
    second.get("/v1/search?q=heat")
    assert second.searches == 1


# -- export ------------------------------------------------------------------------------


def test_export_streams_every_match(make_client: Callable[..., CountingClient]) -> None:
    """The export is every match as NDJSON, the same hits as the paged search in order."""
    app = make_client()
    paged = app.get("/v1/search?q=a&limit=100").json()
    response = app.get("/v1/search/export?q=a")
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert paged["total"] == len(lines) and paged["hits"] == lines


def test_export_compressed(make_client: Callable[..., CountingClient]) -> None:
    """The export is compressed on the fly when asked, and decodes to the plain export."""
    import httpx

    app = make_client()
    plain = app.get("/v1/search/export?q=a", headers={"accept-encoding": "identity"}).content
    client = httpx.Client(transport=app.client._transport, base_url="http://testserver")  # noqa: SLF001
    with client.stream("GET", "/v1/search/export?q=a",
                       headers={"accept-encoding": "gzip"}) as response:  # fmt: skip
        wire = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert plain == gzip.decompress(wire)


def test_export_refuses_page_parameters(make_client: Callable[..., CountingClient]) -> None:
    """limit, offset and cursor choose a page; an export has none: 400 naming the parameter."""
    app = make_client()
    response = app.get("/v1/search/export?q=a&limit=5")
    assert response.status_code == 400 and response.json()["error"]["param"] == "limit"


@pytest.mark.parametrize(
    ("query", "param", "message"),
    [
        ("genres=Nope", "genres", "genre 'Nope' is not in the catalog"),
        ("kind=nope", "kind", "kind 'nope' is not in the catalog"),
    ],
)
def test_export_refuses_unknown_filter_values_before_streaming(
    make_client: Callable[..., CountingClient], query: str, param: str, message: str
) -> None:
    """A filter value the catalog lacks is a 400 JSON error naming it, as on /v1/search,
    not a 500 from a stream that has already started."""
    app = make_client()
    response = app.get(f"/v1/search/export?q=a&{query}")
    error = response.json()["error"]
    assert (400, "application/json", "invalid", param) == (
        response.status_code,
        response.headers["content-type"],
        error["code"],
        error["param"],
    )
    assert error["message"].startswith(message)


def test_export_holds_the_configured_word_limit(
    make_client: Callable[..., CountingClient],
) -> None:
    """REELSEARCH_MAX_QUERY_WORDS bounds an export's q as it bounds a search's: 400 too_long."""
    app = make_client(max_query_words=4)
    answers = [app.get(f"/v1/search{path}?q=a+b+c+d+e") for path in ("", "/export")]
    expected = {"code": "too_long", "param": "q",
                "message": "q has 5 words after normalization; the limit is 4"}  # fmt: skip
    assert [(400, expected)] * 2 == [(a.status_code, a.json()["error"]) for a in answers]
