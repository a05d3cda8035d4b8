"""The heap loaded at start-up is kept out of the garbage collector's full collections, and
frozen again (after one collection) when the engine serves a new catalog version."""

from __future__ import annotations

import gc
from dataclasses import replace

from reelsearch.cache.heap import HeapFreezer
from reelsearch.catalog.documents import PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.config import Settings
from reelsearch.http.app import create_app

from .test_write_invalidation import harness_for


async def test_an_app_freezes_the_heap_while_it_runs(small_copy: Settings) -> None:
    """Between start-up and shutdown the objects loaded at start are frozen (with the cache
    on or off); shutdown gives them back to the collector."""
    for cache in ("memory", "off"):
        gc.unfreeze()
        app = create_app(replace(small_copy, cache=cache, cache_warm_top=0))
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 1000
            assert isinstance(app.state.heap_freezer, HeapFreezer)
        assert gc.get_freeze_count() == 0


async def test_a_new_catalog_version_refreezes_once_per_interval(small_copy: Settings) -> None:
    """After a write the engine serves a new version: ``check`` collects and freezes again
    (once; an unchanged version does nothing), and a second write within the interval
    waits for it."""
    async for harness in harness_for(small_copy, cache="memory"):
        freezer = HeapFreezer(harness.engine, every=0)
        assert not freezer.check()  # nothing changed
        await harness.write([PutMovie(MovieRecord("test:h1", "Heat Wave", year=2020))])
        assert freezer.check() and freezer.refreezes == 1
        assert freezer.frozen_version == harness.engine.snapshot.version
        assert gc.get_freeze_count() > 1000
        assert not freezer.check()
        freezer.every = 3600
        await harness.write([PutMovie(MovieRecord("test:h2", "Heat Wave 2", year=2021))])
        assert not freezer.check() and freezer.refreezes == 1
        gc.unfreeze()
