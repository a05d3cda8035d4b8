"""The catalog's import time travels with the engine's snapshot: read with the version, in
the same read, on both backends, and kept across single-movie writes (which are not
imports). The result cache keys and Last-Modified take it from there instead of opening a
connection of their own per version change."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from reelsearch.cache.keys import read_imported_at
from reelsearch.cache.service import ResultCache
from reelsearch.catalog.documents import PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.writes import CatalogWriter
from reelsearch.config import Settings
from reelsearch.http.search_cache import catalog_change_source
from reelsearch.search.backends import open_search_engine
from reelsearch.search.engine import BlockingSearchEngine


def test_snapshot_holds_the_catalogs_import_time(
    small_engine: BlockingSearchEngine, small_backend_settings: Settings
) -> None:
    """The snapshot's ``imported_at`` is catalog_meta's, as read directly (both backends)."""
    stored = asyncio.run(read_imported_at(small_backend_settings))
    assert stored.startswith("20")  # an ISO 8601 time the import wrote
    assert small_engine.snapshot.imported_at == stored


def test_a_write_keeps_the_import_time_and_the_cache_follows_it(
    small_copy: Settings, tmp_path: Path
) -> None:
    """After a documents-API write the engine's new snapshot has the same import time; the
    result cache moves to the new version with that time, not one it read itself."""

    async def run() -> None:
        settings = replace(small_copy, cache="memory", cache_warm_top=0)
        engine = await open_search_engine(settings)
        cache = ResultCache.open(settings)
        assert cache is not None
        try:
            with closing(sqlite3.connect(settings.sqlite_path)) as conn:
                (stored,) = conn.execute(
                    "SELECT value FROM catalog_meta WHERE key = 'imported_at'"
                ).fetchone()
            before = engine.snapshot
            assert before.imported_at == stored
            cache.change_source = catalog_change_source(engine)
            await cache.ensure_current(before.version, before.imported_at)
            report = await CatalogWriter(settings).write(
                [PutMovie(MovieRecord("test:imported-at", "Quintessence", year=2001))]
            )
            assert report.catalog_version == before.version + 1
            assert await engine.refresh_if_changed()
            after = engine.snapshot
            assert (after.version, after.imported_at) == (before.version + 1, stored)
            # The same import time: writes alone, followed with the keys kept (no flush).
            context = await cache.ensure_current(after.version, after.imported_at)
            assert context.imported_at == stored
            assert cache.counters.invalidations["catalog"] == 0
            # Another import time (an import came): the cache re-keys to what it is given.
            later = "2031-01-01T00:00:00+00:00"
            context = await cache.ensure_current(after.version + 1, later)
            assert (context.catalog_version, context.imported_at) == (after.version + 1, later)
            assert cache.counters.invalidations["catalog"] == 1
        finally:
            await cache.close()
            await engine.close()

    asyncio.run(run())
