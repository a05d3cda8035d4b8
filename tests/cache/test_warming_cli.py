"""Warming after start and after an import, and the ``reelsearch cache`` command."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from conftest import SMALL_AKAS, SMALL_TITLES, TestClient, write_imdb
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.cli import main
from reelsearch.config import Settings
from reelsearch.http.app import create_app

QUERIES = ["alien", "heat", "star", "toy", "psycho"]


def _wait_for(is_done: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not is_done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_import_rekeys_and_warms_the_popular_searches(small_copy: Settings, tmp_path: Path) -> None:
    """After an import the cache moves to the new catalog and recomputes the searches asked
    before it in the background, before anyone asks again."""
    settings = replace(small_copy, cache="memory", catalog_poll_seconds=0.1,
                       cache_warm_cpu_share=1.0)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        for q in QUERIES:
            assert client.get(f"/v1/search?q={q}").status_code == 200
        cache = client.app.state.result_cache  # type: ignore[attr-defined]
        old_version = cache.context.catalog_version
        files = write_imdb(tmp_path / "dump", SMALL_TITLES[:-1], SMALL_AKAS)
        import_imdb(small_copy, list(files.values()))
        _wait_for(lambda: cache.context.catalog_version != old_version)
        _wait_for(lambda: cache.counters.warmed == len(QUERIES))
        assert cache.counters.invalidations["catalog"] == 1
        assert len(cache.memory) == len(QUERIES)  # each popular search is in L1 again
        before = cache.counters.computed
        assert client.get("/v1/search?q=alien").status_code == 200
        assert cache.counters.computed == before  # a hit, not a search


def test_cache_command_clear_warm_stats(
    small_copy: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``reelsearch cache`` clears the disk level, warms it from the search log, reports it."""
    settings = replace(small_copy, cache="memory,disk")
    with TestClient(create_app(settings)) as client:
        for q in QUERIES:
            client.get(f"/v1/search?q={q}")
    # the server flushed its search log to the disk level's folder on shutdown
    monkeypatch.setenv("REELSEARCH_CACHE", "memory,disk")
    url = ["--database-url", small_copy.database_url]
    main([*url, "cache", "clear"])
    main([*url, "cache", "stats"])
    capsys.readouterr()
    main([*url, "cache", "stats"])
    stats = orjson.loads(capsys.readouterr().out)
    assert [(s["name"], s["entries"]) for s in stats["levels"]] == [("disk", 0)]
    main([*url, "cache", "warm", "--top", "3"])
    assert "warmed 3 searches into disk" in capsys.readouterr().out
    main([*url, "cache", "stats"])
    stats = orjson.loads(capsys.readouterr().out)
    assert [(s["name"], s["entries"]) for s in stats["levels"]] == [("disk", 3)]
