"""Tags made when first needed (decision 0019): a computed answer keeps a function that
makes its tags; a write still drops exactly what it reaches, nothing stale is served."""

from __future__ import annotations

import time
from pathlib import Path

from reelsearch.cache.entry import ENTRY_OVERHEAD_BYTES, PENDING_TAG_BYTES, CachedResponse
from reelsearch.cache.memory import MemoryLevel
from reelsearch.config import Settings
from reelsearch.http.search_cache import SearchResponder
from reelsearch.search.engine import SearchEngine
from reelsearch.search.query import SearchQuery

from .test_write_invalidation import QUERIES, WRITES, harness_for


def test_pending_tags_are_made_once_on_first_read() -> None:
    """``tags`` calls the source once and keeps its tuple; ``version`` and ``size`` do not
    call it (the size counts ``PENDING_TAG_BYTES`` meanwhile, then the real bytes)."""
    calls: list[int] = []

    def source() -> tuple[str, ...]:
        calls.append(1)
        return ("v:7", "w:heat", "m:42")

    now = time.time()
    entry = CachedResponse(b"x" * 10, '"e"', "", now, now + 60, now + 90,
                           tag_source=source, computed_on=7)  # fmt: skip
    assert entry.version() == 7 and not entry.has_tags
    assert entry.size == 10 + PENDING_TAG_BYTES + ENTRY_OVERHEAD_BYTES
    assert calls == []
    assert entry.tags == ("v:7", "w:heat", "m:42") and entry.tags is entry.tags
    assert calls == [1] and entry.has_tags
    assert entry.size == 10 + len("v:7w:heatm:42") + ENTRY_OVERHEAD_BYTES
    stored = CachedResponse.from_bytes(entry.to_bytes())
    assert stored.tags == entry.tags and stored.version() == 7


async def test_misses_leave_tags_pending_and_writes_still_drop_what_they_reach(
    small_copy: Settings, tmp_path: Path
) -> None:
    """With memory only (the level a hit is served from), answers computed through the
    cache hold pending tags; after each of four writes every entry still held equals a
    fresh search byte for byte, reached searches are gone and unreached ones stay."""
    async for harness in harness_for(small_copy, cache="memory"):
        cache, responder, engine = harness.cache, harness.responder, harness.engine
        for query_string in QUERIES:
            query = harness.query(query_string)

            async def compute(
                query: SearchQuery = query,
                responder: SearchResponder = responder,
                engine: SearchEngine = engine,
            ) -> CachedResponse:
                return await responder._compute(engine, query)

            await cache.get_or_compute(harness.key(query_string), compute)
        memory = cache.memory
        assert isinstance(memory, MemoryLevel)
        assert len(memory) == len(QUERIES)
        assert not any(entry.has_tags for entry in memory.held_entries())
        for operations in WRITES:
            await harness.write(operations)
            for query_string in QUERIES:
                fresh = await harness.fresh(query_string)
                for level, body in (await harness.held(query_string)).items():
                    assert body == fresh, f"stale {query_string!r} in {level} after {operations}"
        for untouched in ("q=casablanca ", "q=mission ", "q=amelie ", "q=alien "):
            assert set(await harness.held(untouched)) == {"memory"}, untouched
        for reached in ("q=star ", "q=toy ", "q=se7en ", "genres=Drama", "q=lightyear "):
            assert await harness.held(reached) == {}, reached


def test_tags_read_from_two_threads_at_once_are_never_empty() -> None:
    """A write's matcher (a worker thread) and the event loop may make an entry's tags at
    the same moment: with the interpreter switching threads as often as it can, every
    read of 3,000 entries' tags from both threads returns the full tuple."""
    import sys
    import threading

    now = time.time()
    made = ("v:1", "w:heat")
    entries = [
        CachedResponse(
            b"x", '"e"', "", now, now + 60, now + 90, tag_source=lambda: made, computed_on=1
        )  # fmt: skip
        for _ in range(3000)
    ]
    seen: list[tuple[str, ...]] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        reader = threading.Thread(target=lambda: seen.extend(e.tags for e in entries))
        reader.start()
        mine = [entry.tags for entry in entries]
        reader.join()
    finally:
        sys.setswitchinterval(interval)
    assert set(mine) == {made} and set(seen) == {made}
