"""The disk level's set of held keys: a lookup of a key it cannot hold asks SQLite nothing,
and it never hides what the folder holds (its own writes, a restart, other processes)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.disk import CATCH_UP_SECONDS, DiskLevel
from reelsearch.cache.entry import CachedResponse

MakeEntry = Callable[..., CachedResponse]


def open_level(path: Path) -> DiskLevel:
    return DiskLevel(path, 10_000_000, 60.0, CacheCounters())


def statements_of(level: DiskLevel) -> list[str]:
    """The SQL statements the level's connection (this thread's) runs from now on."""
    ran: list[str] = []
    assert level._cache is not None
    level._cache._con.set_trace_callback(ran.append)
    return ran


async def test_an_unknown_key_costs_no_statement(tmp_path: Path, make_entry: MakeEntry) -> None:
    """After a catch-up, a lookup of a key never written is None without one SQL statement,
    however many are asked within ``CATCH_UP_SECONDS``."""
    level = open_level(tmp_path / "l3")
    await level.set("held", make_entry(b"x"))
    level.held.catch_up()
    level.held._checked_at = time.monotonic()  # just checked: the next ones skip SQLite
    ran = statements_of(level)
    assert [await level.get(f"never-{n}") for n in range(100)] == [None] * 100
    assert ran == []
    assert (await level.get("held")) is not None  # a held key is read (one SELECT)
    assert len(ran) == 1 and ran[0].startswith("SELECT")
    await level.close()


async def test_a_restarted_level_answers_what_was_written(
    tmp_path: Path, make_entry: MakeEntry
) -> None:
    """A new level on the same folder (a restarted server) reads every key at open and
    serves the entry written before, byte for byte."""
    first = open_level(tmp_path / "l3")
    entry = make_entry(b'{"hits":[1]}')
    await first.set("k", entry)
    await first.close()
    second = open_level(tmp_path / "l3")
    assert second.held.keys == {"k"}
    found = await second.get("k")
    assert found is not None and (found.body, found.etag) == (entry.body, entry.etag)
    await second.close()


async def test_another_levels_write_is_seen_after_the_catch_up(
    tmp_path: Path, make_entry: MakeEntry
) -> None:
    """Two levels on one folder (two workers): what the other writes after this one opened
    is served once this one catches up: at once with no interval, else within
    ``CATCH_UP_SECONDS``; never hidden for longer."""
    ours, theirs = open_level(tmp_path / "l3"), open_level(tmp_path / "l3")
    ours.held.catch_up_seconds = 0.0
    await theirs.set("written-there", make_entry(b"a"))
    assert (await ours.get("written-there")) is not None
    ours.held.catch_up_seconds = CATCH_UP_SECONDS
    assert await ours.get("not-yet") is None  # checks now: the interval starts
    await theirs.set("later", make_entry(b"b"))
    time.sleep(CATCH_UP_SECONDS)
    found = await ours.get("later")
    assert found is not None and found.body == b"b"
    await ours.close()
    await theirs.close()


async def test_another_process_write_is_seen(tmp_path: Path, make_entry: MakeEntry) -> None:
    """A write by another process (its own SQLite connection and clock reading) reaches
    this level's set through SQLite's data_version and the stored keys' times."""
    ours = open_level(tmp_path / "l3")
    ours.held.catch_up_seconds = 0.0
    assert await ours.get("from-elsewhere") is None
    entry = make_entry(b"elsewhere")
    script = (
        "import asyncio, sys\n"
        "from reelsearch.cache.counters import CacheCounters\n"
        "from reelsearch.cache.disk import DiskLevel\n"
        "from reelsearch.cache.entry import CachedResponse\n"
        "level = DiskLevel(sys.argv[1], 10_000_000, 60.0, CacheCounters())\n"
        "entry = CachedResponse.from_bytes(sys.stdin.buffer.read())\n"
        "asyncio.run(level.set('from-elsewhere', entry))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "l3")],
        input=entry.to_bytes(),
        check=True,
        timeout=60,
    )
    found = await ours.get("from-elsewhere")
    assert found is not None and found.body == b"elsewhere"
    await ours.close()


async def test_a_key_deleted_elsewhere_is_forgotten(tmp_path: Path, make_entry: MakeEntry) -> None:
    """An entry another level deleted is None here (one wasted read), and the key leaves
    the set so the next lookup asks nothing."""
    ours, theirs = open_level(tmp_path / "l3"), open_level(tmp_path / "l3")
    await ours.set("k", make_entry(b"a"))
    assert await theirs.delete("k")
    assert await ours.get("k") is None
    assert ours.held.keys is not None and "k" not in ours.held.keys
    await ours.close()
    await theirs.close()


async def test_a_clear_and_a_broken_folder(tmp_path: Path, make_entry: MakeEntry) -> None:
    """``clear`` empties the set; a level whose folder cannot open holds nothing and
    raises nothing."""
    level = open_level(tmp_path / "l3")
    await level.set("k", make_entry(b"a"))
    await level.clear()
    assert level.held.keys == set() and await level.get("k") is None
    await level.close()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    broken = open_level(blocker)
    assert broken.held.keys is None and await broken.get("k") is None


async def test_a_key_back_at_its_second_sighting_is_not_written_again(
    tmp_path: Path, make_entry: MakeEntry
) -> None:
    """The second sighting of a key in L1 writes its answer to disk once; after L1's counts
    are halved (its frequency back to 0), the next second sighting finds the key held and
    writes nothing (the answer is on disk already)."""
    from reelsearch.cache.service import ResultCache
    from reelsearch.config import Settings

    settings = Settings(cache="memory,disk", cache_disk_path=str(tmp_path / "l3"))
    cache = ResultCache.open(settings)
    assert cache is not None and cache.memory is not None and cache.disk_level is not None
    writes: list[str] = []
    real_set = cache.disk_level.set

    async def counted_set(key: str, entry: CachedResponse) -> None:
        writes.append(key)
        await real_set(key, entry)

    cache.disk_level.set = counted_set  # type: ignore[method-assign]

    async def sighting() -> None:
        if await cache.lookup("k", time.time()) is None:
            # computed on catalog version 0, no write applied since: storable
            await cache.store("k", make_entry(b'{"hits":[]}', tags=("v:0",)))
        await asyncio.gather(*cache._background)

    await sighting()  # first: L1 only
    await sighting()  # second: written to disk
    assert writes == ["k"]
    cache.memory._age()
    cache.memory._age()
    assert cache.memory.frequency("k") == 0
    await sighting()
    await sighting()  # a second sighting again
    assert writes == ["k"]
    await cache.close()


async def test_the_level_never_waits_for_the_disk_to_sync(
    tmp_path: Path, make_entry: MakeEntry
) -> None:
    """The disk level's SQLite index runs with ``synchronous=OFF``: a write on the event
    loop hands its pages to the OS and goes on, with no fsync at commit or checkpoint,
    and a restarted level still reads what was written."""
    level = open_level(tmp_path / "l3")
    assert level._cache is not None
    assert level._cache._con.execute("PRAGMA synchronous").fetchone() == (0,)
    await level.set("k", make_entry(b"synced-or-not"))
    await level.close()
    again = open_level(tmp_path / "l3")
    found = await again.get("k")
    assert found is not None and found.body == b"synced-or-not"
    await again.close()
