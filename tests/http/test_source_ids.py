"""Source ids: every hit and movie says where it came from; /v1/movies/{source}:{id} finds it."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

from pathlib import Path
from typing import Any

from reelsearch.catalog.importers.movielens import import_movielens
from reelsearch.config import Settings
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.query import parse_search

Client = Any  # starlette.testclient.TestClient, imported by conftest


def test_hits_carry_their_source_and_source_id(client: Client) -> None:
    """An IMDb title's hit has source "imdb" and its tconst, on each backend."""
    hits = client.get("/v1/search", params={"q": "amelie", "limit": 1}).json()["hits"]
    assert ("Amélie", "imdb", "tt0000004") == (
        hits[0]["title"],
        hits[0]["source"],
        hits[0]["source_id"],
    )


def test_source_fields_can_be_asked_for_alone(client: Client) -> None:
    """fields=source,source_id returns just those."""
    body = client.get("/v1/search", params={"q": "se7en", "fields": "source,source_id"}).json()
    assert [{"source": "imdb", "source_id": "tt0000021"}] == body["hits"][:1]


def test_a_movie_by_source_id_is_the_movie_by_id(client: Client) -> None:
    """/v1/movies/imdb:tt0000021 is the same document as /v1/movies/21."""
    by_source = client.get("/v1/movies/imdb:tt0000021")
    by_id = client.get("/v1/movies/21")
    assert (200, 200) == (by_source.status_code, by_id.status_code)
    assert by_id.json() == by_source.json()
    assert ("Se7en", 21, ["Seven"]) == (
        by_source.json()["title"],
        by_source.json()["id"],
        by_source.json()["alt_titles"],
    )


def test_unknown_and_malformed_source_ids(client: Client) -> None:
    """An unknown source id is a 404; one without a source or an id is a 400 naming the form."""
    missing = client.get("/v1/movies/imdb:tt9999999")
    assert (404, "not_found", "no movie with source id imdb:tt9999999") == (
        missing.status_code,
        missing.json()["error"]["code"],
        missing.json()["error"]["message"],
    )
    for bad in ("imdb:", ":tt0000021"):
        response = client.get(f"/v1/movies/{bad}")
        assert (400, "id") == (response.status_code, response.json()["error"]["param"])
        assert "a source id is SOURCE:ID" in response.json()["error"]["message"]


def test_movielens_and_sample_ids_round_trip(tmp_path: Path, sample_settings: Settings) -> None:
    """A MovieLens movieId and a sample row name come back as source ids and find their movie."""
    csv = tmp_path / "movies.csv"
    csv.write_text('movieId,title,genres\n2571,"Matrix, The (1999)",Action\n', encoding="utf-8")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ml.db'}")
    import_movielens(settings, csv)
    for where, key, title in [
        (settings, "movielens:2571", "The Matrix"),
        (sample_settings, None, "The Matrix"),
    ]:
        engine = open_blocking_engine(where)
        try:
            hit = engine.search(parse_search([("q", "the matrix"), ("limit", "1")])).hits[0]
            found = engine.get_movie(key or f"{hit['source']}:{hit['source_id']}")
        finally:
            engine.close()
        assert found is not None
        assert (title, hit["id"], hit["source"], hit["source_id"]) == (
            found["title"],
            found["id"],
            found["source"],
            found["source_id"],
        )
        if key is not None:
            assert key == f"{hit['source']}:{hit['source_id']}"
        else:
            assert "ggplot2movies" == hit["source"] and hit["source_id"].isdigit()
