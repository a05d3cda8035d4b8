"""Database, catalog and process figures at /metrics: statement time by query shape,
read-pool waits, the import's own figures, GC pauses and event-loop lag.

Each test runs the real app in-process (Starlette's TestClient) on a real SQLite
catalog, with a fast sampler tick, and reads /metrics through prometheus-client's
parser.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from conftest import settings_for, write_imdb
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.db import ReadPool
from reelsearch.db.timing import SHAPES, query_shape
from reelsearch.http.app import create_app
from reelsearch.observability.readiness import CatalogDatabase
from reelsearch.search.query import parse_autocomplete, parse_search
from reelsearch.search.readers import RecordingReader, SqliteReader, Statement, run_inline

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def by_label(found: Samples, name: str, label: str) -> dict[str, float]:
    """``name``'s samples keyed by the value of ``label``."""
    return {dict(labels)[label]: v for (n, labels), v in found.items() if n == name}


def scrape_until(
    client: TestClient, done: Callable[[Samples], bool], seconds: float = 5
) -> Samples:
    """Scrape until ``done`` holds (sampler ticks are 0.05 s here) or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        found = scrape(client)
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_query_shapes_are_a_fixed_set_of_names() -> None:
    """A statement's label is one of the fixed shape names, whatever its text: the
    engine's kinds of statement by name, anything else (with any words in it) "other"."""
    assert query_shape("SELECT count(*) FROM (SELECT 1 FROM title_fts WHERE x) AS m") == "count"
    assert query_shape("SELECT m.id FROM movies AS m WHERE m.search_rank IN (?,?,?)") == (
        "rows_by_rank"
    )
    assert query_shape("EXPLAIN QUERY PLAN SELECT 1 FROM title_fts") == "explain"
    assert query_shape("SELECT 'secretword' FROM somewhere_else") == "other"
    assert set(SHAPES) == {
        "explain", "facets", "count", "tiers", "alt_titles", "rows_by_rank",
        "text_match", "movie", "filter_page", "other",
    }  # fmt: skip


def engine_statements(settings: Settings, calls: list[Callable[[Any, Any], Any]]) -> list[str]:
    """The statements the engine sends for ``calls`` (reader, snapshot -> coroutine)."""
    from reelsearch.search.sqlite import SqliteSearchEngine

    async def record() -> list[str]:
        engine = await SqliteSearchEngine.open(settings)
        seen: list[Statement] = []
        try:
            with engine.pool.connection() as conn:
                reader = RecordingReader(SqliteReader(conn), seen)
                for call in calls:
                    run_inline(call(reader, engine.snapshot))
        finally:
            await engine.close()
        return [sql for sql, _ in seen]

    return anyio.run(record)


def test_statement_times_are_counted_by_shape(small_settings: Settings) -> None:
    """Each statement a search, an autocomplete and a movie view send is observed once
    in reelsearch_db_query_duration_seconds under its shape (the engine's background
    version polls are "other" and left out)."""
    settings = replace(small_settings, cache="off", metrics_sample_seconds=0.05)
    # A year among the words, so the text match is a statement (without one the
    # catalog's postings answer it, filters too: search/rank_sets.py).
    search = parse_search([("q", "matrix 1999"), ("facets", "genres,decade")])
    typed = parse_autocomplete([("q", "mat")])
    sqls = engine_statements(
        settings,
        [
            lambda reader, snapshot: _tiered(settings).search(reader, snapshot, search),
            lambda reader, snapshot: _tiered(settings).autocomplete(reader, snapshot, typed),
        ],
    )
    expected = Counter(query_shape(sql) for sql in sqls)
    expected.pop("other", None)
    assert expected["text_match"] >= 1 and expected["facets"] >= 1
    name = "reelsearch_db_query_duration_seconds_count"
    with TestClient(create_app(settings)) as client:
        # The engine's start-up reads (its snapshot) are drained by the first ticks.
        scrape_until(client, lambda f: bool(by_label(f, name, "shape")))
        time.sleep(0.3)
        before = scrape(client)
        path = "/v1/search?q=matrix+1999&facets=genres,decade"
        assert client.get(path).status_code == 200
        assert client.get("/v1/autocomplete?q=mat").status_code == 200

        def moved(found: Samples) -> dict[str, float]:
            old, new = by_label(before, name, "shape"), by_label(found, name, "shape")
            grown = {shape: new[shape] - old.get(shape, 0) for shape in new}
            return {s: n for s, n in grown.items() if n and s != "other"}

        found = scrape_until(client, lambda f: moved(f) == dict(expected))
    assert dict(expected) == moved(found)
    assert set(by_label(found, name, "shape")) <= set(SHAPES)


def _tiered(settings: Settings) -> Any:
    from reelsearch.search.sql import SQLITE
    from reelsearch.search.tiered import TieredSearch

    return TieredSearch(settings, SQLITE)


def test_read_pool_counts_a_wait_for_a_busy_connection(small_settings: Settings) -> None:
    """With one read connection held by another thread for 0.3 s, the next read waits
    for it: the pool counts exactly one wait of about that long, and two checkouts."""
    pool = ReadPool(replace(small_settings, db_read_pool_size=1))
    held = threading.Event()

    def hold() -> None:
        with pool.connection():
            held.set()
            time.sleep(0.3)

    try:
        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)
        with pool.connection() as conn:
            conn.execute("SELECT 1").fetchall()
        holder.join()
        stats = pool.stats()
    finally:
        pool.dispose()
    assert [stats["checkouts"], stats["waits"]] == [2, 1]
    assert 0.15 < stats["wait_seconds"] < 5


def test_import_figures_are_recorded_and_exported(tmp_path: Path, small_titles: list[Any]) -> None:
    """An import with one malformed line records its duration, rows read and bad rows in
    the catalog; the server reads them and exports reelsearch_catalog_import{figure}."""
    files = write_imdb(tmp_path / "dump", small_titles, extra_basics=["tt9999999\tmovie"])
    settings = settings_for(tmp_path / "bad.db", cache="off", metrics_sample_seconds=0.05)
    report = import_imdb(settings, list(files.values()))
    assert report.bad_rows == 1
    figures = anyio.run(CatalogDatabase(settings).import_figures)
    assert [figures["rows_read"], figures["bad_rows"]] == [report.rows_read, 1]
    assert 0 < figures["seconds"] <= report.seconds
    with TestClient(create_app(settings)) as client:
        found = scrape_until(
            client, lambda f: "bad_rows" in by_label(f, "reelsearch_catalog_import", "figure")
        )
    exported = by_label(found, "reelsearch_catalog_import", "figure")
    assert exported == {"seconds": figures["seconds"], "rows_read": report.rows_read,
                        "bad_rows": 1.0}  # fmt: skip


def test_gc_pauses_and_event_loop_lag_are_measured(small_settings: Settings) -> None:
    """Three full collections add at least three generation-2 runs and some pause time;
    holding the event loop for 0.3 s shows as a lag observation above 0.1 s."""
    settings = replace(small_settings, cache="off", metrics_sample_seconds=0.05)
    lag = "reelsearch_event_loop_lag_seconds_bucket"
    with TestClient(create_app(settings)) as client:
        before = scrape_until(client, lambda f: by_label(f, lag, "le").get("+Inf", 0) > 0)
        for _ in range(3):
            gc.collect()
        client.portal.call(time.sleep, 0.3)  # type: ignore[union-attr]  # blocks the app's loop

        def settled(found: Samples) -> bool:
            buckets = by_label(found, lag, "le")
            return buckets["+Inf"] - buckets["0.1"] > by_label(before, lag, "le").get(
                "+Inf", 0
            ) - by_label(before, lag, "le").get("0.1", 0)

        after = scrape_until(client, settled)
    assert settled(after)
    runs = "reelsearch_gc_collections_total"
    assert by_label(after, runs, "generation")["2"] - by_label(before, runs, "generation")["2"] >= 3
    pause = ("reelsearch_gc_pause_seconds_total", ())
    assert after[pause] > before[pause]


def test_a_new_import_is_logged_once_and_its_figures_exported(
    tmp_path: Path, small_titles: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """While the app serves, another import (one bad row this time) commits version 2:
    the app logs "now serving version 2" once however many polls follow, and
    /metrics moves to the new version and the new import's bad rows."""
    files = write_imdb(tmp_path / "dump", small_titles)
    settings = settings_for(tmp_path / "live.db", cache="off", metrics_sample_seconds=0.05,
                            catalog_poll_seconds=0.05, log_format="json")  # fmt: skip
    import_imdb(settings, list(files.values()))
    with TestClient(create_app(settings)) as client:
        scrape_until(client, lambda f: f.get(("reelsearch_catalog_version", ())) == 1)
        again = write_imdb(tmp_path / "again", small_titles, extra_basics=["tt9999999\tmovie"])
        import_imdb(settings, list(again.values()))

        def moved(found: Samples) -> bool:
            bad = by_label(found, "reelsearch_catalog_import", "figure").get("bad_rows")
            return found.get(("reelsearch_catalog_version", ())) == 2 and bad == 1

        found = scrape_until(client, moved)
        time.sleep(0.5)  # ten more polls: none may log the change again
    assert moved(found)
    logged = capsys.readouterr().err.splitlines()
    assert sum("catalog changed; now serving version 2" in line for line in logged) == 1
