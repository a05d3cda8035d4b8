"""What L1 holds costs the garbage collector nothing (decision 0029): an entry, its L1
record, its pending tag source and its header blocks are out of the collector's view,
are still freed by reference count when dropped, and the tags made later are the same."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace

from conftest import TestClient
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.heap import untrack
from reelsearch.cache.memory import MemoryLevel
from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.search_cache import search_tags, tag_source

from .test_write_invalidation import QUERIES, harness_for


def test_untrack_leaves_the_object_usable_and_frees_it_by_reference_count() -> None:
    """An untracked list is no longer tracked, keeps its items, and the bytes it holds
    (4 MB) are given back the moment the last reference to it goes, without a collection."""
    tracemalloc.start()
    try:
        held = [bytes(4_000_000)]
        untrack(held)
        assert (False, 4_000_000) == (gc.is_tracked(held), len(held[0]))
        before = tracemalloc.get_traced_memory()[0]
        del held
        assert before - tracemalloc.get_traced_memory()[0] >= 4_000_000
    finally:
        tracemalloc.stop()


def test_l1_holds_its_entries_untracked_and_frees_them_when_dropped(
    make_entry: Callable[..., CachedResponse],
) -> None:
    """Each stored entry is untracked, and so are L1's records of their deadlines and
    sizes (dicts of numbers); dropping 50 entries of 100 kB each gives their 5 MB back at
    once (reference counts, no collection)."""
    level = MemoryLevel(64 << 20, 3600)
    now = time.time()
    tracemalloc.start()
    try:
        for i in range(50):
            assert level.put(f"k{i}", make_entry(size=100_000), now)
        entries = level.held_entries()
        assert 50 == len(entries)
        assert [False] * 50 == [gc.is_tracked(entry) for entry in entries]
        assert [False, False] == [gc.is_tracked(level._expires), gc.is_tracked(level._sizes)]
        del entries
        before = tracemalloc.get_traced_memory()[0]
        gc.disable()
        try:
            level.drop_all()
            freed = before - tracemalloc.get_traced_memory()[0]
        finally:
            gc.enable()
        assert freed >= 50 * 100_000
    finally:
        tracemalloc.stop()


def test_a_held_answer_leaves_nothing_tracked_after_its_first_hit(
    small_copy: Settings,
) -> None:
    """Through the app: after a miss and a hit, the entry, its tag source (one tuple of
    what the tags are made of), its header blocks' dict, the blocks and every line in
    them are untracked, and the hit sent the entry's ETag."""
    app = create_app(replace(small_copy, cache="memory", cache_warm_top=0, cache_doorkeeper=False))
    with TestClient(app) as client:
        plain = {"accept-encoding": "identity"}
        miss = client.get("/v1/search?q=alien", headers=plain)
        hit = client.get("/v1/search?q=alien", headers=plain)
        assert (200, 200, miss.content) == (miss.status_code, hit.status_code, hit.content)
        (entry,) = app.state.result_cache.memory.held_entries()
        source = entry._tag_source
        assert source is not None
        assert [False, False, False] == [
            gc.is_tracked(entry), gc.is_tracked(source), gc.is_tracked(entry.wire),
        ]  # fmt: skip
        lines = [line for block in entry.wire["identity"] for line in block]
        assert [False] * (3 + len(lines)) == [
            gc.is_tracked(entry.wire["identity"]), *map(gc.is_tracked, entry.wire["identity"]),
            *map(gc.is_tracked, lines),
        ]  # fmt: skip
        assert miss.headers["etag"] == hit.headers["etag"] == entry.etag


async def test_tags_made_later_equal_the_tags_made_at_once(small_copy: Settings) -> None:
    """For each of the write tests' searches (words, prefixes, quoted words, stop words,
    filters, facets), the pending source makes exactly the tags ``search_tags`` makes
    from the whole query and page."""
    async for harness in harness_for(small_copy, cache="memory"):
        engine = harness.engine
        version = engine.snapshot.version
        for query_string in [*QUERIES, 'q="the matrix" ', "q=the matrix reloaded"]:
            query = harness.query(query_string)
            result = await engine.search(query)
            expected = search_tags(query, result, version, engine)
            assert expected == tag_source(query, result, version, engine)(), query_string
