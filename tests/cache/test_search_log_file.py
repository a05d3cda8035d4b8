"""The search log's shared file: a full file is only rewritten when a flush can change it."""

from __future__ import annotations

from pathlib import Path

import orjson

from reelsearch.cache.warming import SearchLog


async def test_a_full_file_takes_only_what_can_enter(tmp_path: Path) -> None:
    """With room for three searches: a flush adds to known ones and lets in a new one asked
    more often than the least asked kept; a new one asked no more often stays out (the
    same as merging all and keeping the top three), and a flush of only such searches
    leaves the file untouched."""
    path = tmp_path / "searchlog.json"
    log = SearchLog(None, "ns", path, max_shared=3)
    for query, times in ((b"q=a", 5), (b"q=b", 3), (b"q=c", 2)):
        for _ in range(times):
            log.record(query)
    await log.flush()
    assert orjson.loads(path.read_bytes()) == {"q=a": 5, "q=b": 3, "q=c": 2}
    for query, times in ((b"q=d", 2), (b"q=e", 4), (b"q=c", 1)):
        for _ in range(times):
            log.record(query)
    await log.flush()
    # c (now 3) ties with b and loses to the entry kept first; d (2) never entered.
    assert orjson.loads(path.read_bytes()) == {"q=a": 5, "q=e": 4, "q=b": 3}
    written = path.stat().st_mtime_ns
    before = path.read_bytes()
    log.record(b"q=f")
    log.record(b"q=g")
    await log.flush()
    assert path.read_bytes() == before and path.stat().st_mtime_ns == written
    assert await log.top(2) == [b"q=a", b"q=e"]
