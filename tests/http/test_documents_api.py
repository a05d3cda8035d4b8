"""The documents API over HTTP on each backend: admin token, validation errors naming the
field (and line), idempotent writes, and searches, autocomplete and facets that follow a
write or a delete within the catalog poll interval."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import SMALL_AKAS, SMALL_TITLES, TestClient, settings_for, write_imdb
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.http import create_app

TOKEN = "t" * 40
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MOVIE = {
    "title": "Zorblax Quintessence",
    "year": 2024,
    "runtime_min": 99,
    "rating": 7.5,
    "votes": 1234,
    "genres": ["Drama", "Mockumentary"],
    "kind": "movie",
    "alt_titles": ["Flurbo Quint"],
}
_names = itertools.count()


@pytest.fixture
def writable(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Settings:
    """A private catalog of the small titles on each backend, with an admin token set."""
    options: dict[str, Any] = {"admin_token": TOKEN, "catalog_poll_seconds": 0.05,
                               "cache": "memory", "search_deadline_ms": 10_000}  # fmt: skip
    if backend == "sqlite":
        settings = settings_for(tmp_path / "catalog.db", **options)
    else:
        create: Callable[[str], str] = request.getfixturevalue("postgres_databases")
        settings = Settings(database_url=create(f"docs_http{next(_names)}"), **options)
    import_imdb(settings, list(write_imdb(tmp_path / "dump", SMALL_TITLES, SMALL_AKAS).values()))
    return settings


@pytest.fixture
def api(writable: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(writable), raise_server_exceptions=False) as client:
        yield client


def _version(api: TestClient) -> int:
    return int(api.get("/ready", headers=ADMIN).json()["catalog_version"])


def _served(api: TestClient, version: int) -> None:
    """Wait (at most 10 s) until the server's poller serves ``version``."""
    deadline = time.monotonic() + 10
    while _version(api) < version:
        assert time.monotonic() < deadline, f"version {version} never served"
        time.sleep(0.02)


def _titles(api: TestClient, q: str) -> list[str]:
    return [hit["title"] for hit in api.get("/v1/search", params={"q": q}).json()["hits"]]


def test_writes_need_the_admin_token(api: TestClient) -> None:
    """PUT, DELETE and bulk without an Authorization header are 401 (naming the Bearer
    scheme), with a wrong token 403; either way nothing is written."""
    body = orjson.dumps(MOVIE)
    wrong = {"Authorization": "Bearer " + "x" * 40}
    for headers, status, code in [({}, 401, "unauthorized"), (wrong, 403, "forbidden")]:
        for method, path, content in [
            ("PUT", "/v1/movies/doc:1", body),
            ("DELETE", "/v1/movies/imdb:tt0000014", None),
            ("POST", "/v1/movies/bulk", b'{"source": "doc", "source_id": "2", "title": "X"}'),
        ]:
            response = api.request(method, path, content=content, headers=headers)
            assert (status, code, "documents") == (
                response.status_code,
                response.json()["error"]["code"],
                response.json()["error"]["param"],
            ), (method, path)
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
    assert 404 == api.get("/v1/movies/doc:1").status_code
    assert 200 == api.get("/v1/movies/imdb:tt0000014").status_code


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "param"),
    [
        ("/v1/movies/doc:1", {"year": 2000}, 400, "invalid_document", "title"),
        ("/v1/movies/doc:1", {"title": "X", "year": "2000"}, 400, "invalid_document", "year"),
        ("/v1/movies/doc:1", {"title": "X", "rating": 10.5}, 400, "invalid_document", "rating"),
        ("/v1/movies/doc:1", {"title": "X", "genre": ["A"]}, 400, "invalid_document", "genre"),
        ("/v1/movies/doc:1", [MOVIE], 400, "invalid_document", None),
        ("/v1/movies/DOC:1", MOVIE, 400, "invalid_document", "source"),
        ("/v1/movies/12", MOVIE, 400, "invalid_document", "id"),
    ],
)
def test_put_refusals_name_the_field(
    api: TestClient, path: str, body: object, status: int, code: str, param: str | None
) -> None:
    """A bad document or source id is a 4xx JSON error naming the field; nothing is written."""
    response = api.put(path, content=orjson.dumps(body), headers=ADMIN)
    error = response.json()["error"]
    assert (status, code, param) == (response.status_code, error["code"], error["param"])
    assert 404 == api.get("/v1/movies/doc:1").status_code


def test_put_bad_json_and_oversized_bodies(api: TestClient) -> None:
    """Not JSON is 400 bad_json; a body over 256 KiB is 413 too_large."""
    response = api.put("/v1/movies/doc:1", content=b"{title", headers=ADMIN)
    assert (400, "bad_json") == (response.status_code, response.json()["error"]["code"])
    big = orjson.dumps({"title": "x" * 300_000})
    response = api.put("/v1/movies/doc:1", content=big, headers=ADMIN)
    assert (413, "too_large") == (response.status_code, response.json()["error"]["code"])


def test_a_put_is_searchable_within_the_poll_interval(api: TestClient) -> None:
    """PUT creates (201) a movie that GET returns at once; once the poller serves the new
    version, search finds it exactly, by a typo of a word new to the catalog and by its
    alternate title; autocomplete suggests it; the genre facet counts it. The same PUT
    again is 200 "unchanged" and commits no version."""
    start = _version(api)
    response = api.put("/v1/movies/doc:1", content=orjson.dumps(MOVIE), headers=ADMIN)
    assert 201 == response.status_code
    created = response.json()
    assert ("doc", "1", "created", start + 1) == (
        created["source"], created["source_id"], created["result"], created["catalog_version"]
    )  # fmt: skip
    movie = api.get("/v1/movies/doc:1").json()
    assert (created["id"], "Zorblax Quintessence", ["Flurbo Quint"]) == (
        movie["id"], movie["title"], movie["alt_titles"]
    )  # fmt: skip
    _served(api, start + 1)
    for q in ("zorblax", "zorblix", "flurbo quint"):
        assert ["Zorblax Quintessence"] == _titles(api, q), q
    suggestions = api.get("/v1/autocomplete", params={"q": "zorbl"}).json()["suggestions"]
    assert ["Zorblax Quintessence"] == [s["title"] for s in suggestions]
    facets = api.get("/v1/search", params={"q": "zorblax", "facets": "genres"}).json()["facets"]
    assert {"Drama": 1, "Mockumentary": 1} == facets["genres"]
    again = api.put("/v1/movies/doc:1", content=orjson.dumps(MOVIE), headers=ADMIN)
    assert (200, "unchanged", None) == (
        again.status_code, again.json()["result"], again.json()["catalog_version"]
    )  # fmt: skip
    assert start + 1 == _version(api)


def test_a_delete_leaves_search_autocomplete_and_facets(api: TestClient) -> None:
    """DELETE of an imported movie (Heat) is 200 "deleted"; once served, search (exact and
    typo), autocomplete and the catalog-wide genre facet no longer count it; a second
    DELETE is 404."""
    start = _version(api)
    before = api.get("/v1/search", params={"facets": "genres"}).json()["facets"]["genres"]
    assert ["Heat"] == _titles(api, "heat")
    response = api.delete("/v1/movies/imdb:tt0000014", headers=ADMIN)
    assert (200, "deleted", start + 1) == (
        response.status_code, response.json()["result"], response.json()["catalog_version"]
    )  # fmt: skip
    _served(api, start + 1)
    assert [] == _titles(api, "heat") == _titles(api, "haet")
    suggestions = api.get("/v1/autocomplete", params={"q": "hea"}).json()["suggestions"]
    assert "Heat" not in [s["title"] for s in suggestions]
    after = api.get("/v1/search", params={"facets": "genres"}).json()["facets"]["genres"]
    assert before["Crime"] - 1 == after["Crime"]  # Heat is Action, Crime, Drama
    assert 404 == api.get("/v1/movies/imdb:tt0000014").status_code
    again = api.delete("/v1/movies/imdb:tt0000014", headers=ADMIN)
    assert (404, "not_found") == (again.status_code, again.json()["error"]["code"])


def _lines(*documents: object) -> bytes:
    return b"\n".join(orjson.dumps(d) for d in documents) + b"\n"


def test_bulk_answers_line_by_line(api: TestClient) -> None:
    """A bulk of puts and deletes is one version, answered per line in order; blank lines
    are skipped but counted in line numbers."""
    start = _version(api)
    body = _lines(
        {"source": "doc", "source_id": "a", **MOVIE},
        {"source": "doc", "source_id": "b", "title": "Second Zorblax"},
        {"source": "imdb", "source_id": "tt0000014", "op": "delete"},
        {"source": "doc", "source_id": "none", "op": "delete"},
    ).replace(b"\n", b"\n\n", 1)
    response = api.post("/v1/movies/bulk", content=body, headers=ADMIN)
    assert 200 == response.status_code, response.text
    answer = response.json()
    assert (start + 1, 3) == (answer["catalog_version"], answer["changed"])
    assert [(1, "a", "created"), (3, "b", "created"), (4, "tt0000014", "deleted"),
            (5, "none", "not_found")] == [
        (r["line"], r["source_id"], r["result"]) for r in answer["results"]
    ]  # fmt: skip
    _served(api, start + 1)
    assert ["Zorblax Quintessence", "Second Zorblax"] == _titles(api, "zorblax")
    again = api.post("/v1/movies/bulk", content=body, headers=ADMIN).json()
    assert (None, 0) == (again["catalog_version"], again["changed"])


def test_bulk_refusals_name_line_and_field(api: TestClient, writable: Settings) -> None:
    """Bad lines are a 400 naming the first bad line and field, listing each bad line, and
    nothing is written; a movie named twice is refused; over the line limit is 413."""
    body = (
        _lines(
            {"source": "doc", "source_id": "a", "title": "Fine"},
            {"source": "doc", "source_id": "b", "year": 1999},
            {"source": "doc", "title": "No id"},
        )
        + b"{not json\n"
    )
    response = api.post("/v1/movies/bulk", content=body, headers=ADMIN)
    error = response.json()["error"]
    assert (400, "invalid_document", 2, "title") == (
        response.status_code, error["code"], error["line"], error["param"]
    )  # fmt: skip
    assert error["message"].startswith("line 2: title is required")
    assert [(2, "title"), (3, "source_id"), (4, None)] == [
        (e["line"], e["param"]) for e in error["errors"]
    ]
    assert 404 == api.get("/v1/movies/doc:a").status_code
    twice = _lines(
        {"source": "doc", "source_id": "a", "title": "One"},
        {"source": "doc", "source_id": "a", "title": "Two"},
    )
    error = api.post("/v1/movies/bulk", content=twice, headers=ADMIN).json()["error"]
    assert (2, "line 2: doc:a is also on line 1; send each movie once") == (
        error["line"], error["message"]
    )  # fmt: skip
    empty = api.post("/v1/movies/bulk", content=b"\n\n", headers=ADMIN)
    assert 400 == empty.status_code
    many = _lines(*({"source": "doc", "source_id": str(n), "title": "T"} for n in range(3)))
    with TestClient(create_app(Settings(**{**_fields(writable), "documents_bulk_max_lines": 2})),
                    raise_server_exceptions=False) as limited:  # fmt: skip
        response = limited.post("/v1/movies/bulk", content=many, headers=ADMIN)
    assert (413, "too_large") == (response.status_code, response.json()["error"]["code"])


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


def test_a_write_during_an_import_is_a_503(writable: Settings, paused_import: type) -> None:
    """While an import holds the catalog past write_lock_timeout_ms, a PUT is refused with
    503 "unavailable" and Retry-After; the import then commits unharmed."""
    settings = Settings(**{**_fields(writable), "write_lock_timeout_ms": 200})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.put("/v1/movies/doc:0", content=orjson.dumps(MOVIE), headers=ADMIN)  # migrated
        with paused_import(writable) as job:
            job.start()
            response = client.put("/v1/movies/doc:1", content=orjson.dumps(MOVIE), headers=ADMIN)
            job.finish()
        assert (503, "unavailable", "2") == (
            response.status_code, response.json()["error"]["code"],
            response.headers.get("retry-after"),
        )  # fmt: skip
        assert 404 == client.get("/v1/movies/doc:1").status_code
        assert 200 == client.get("/v1/movies/test:150").status_code
