"""A host's copies of PostgreSQL catalogs' word indexes and postings do not pile up:
opening one marks it as opened, and copies no worker opened for a week are removed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.hit_rows import hit_rows_cache_name
from reelsearch.search.stored_postings import postings_cache_name
from reelsearch.search.stored_words import (
    HOST_COPY_IDLE_SECONDS,
    cache_name,
    mark_opened_and_prune,
)

NOW = 1_900_000_000.0
DAY = 86_400.0


def _file(directory: Path, name: str, *, opened: float, written: float) -> Path:
    path = directory / name
    path.write_bytes(b"copy")
    os.utime(path, (opened, written))
    return path


def test_idle_copies_are_removed_and_others_kept(tmp_path: Path) -> None:
    """Beside the copy opened: word indexes, postings and crashed writes idle for more
    than the limit go; a copy opened or written within it stays, and so does any file
    that is not a host copy, however old."""
    old = NOW - HOST_COPY_IDLE_SECONDS - DAY
    opened = _file(tmp_path, "v9-aaaa.postings", opened=old, written=old)
    idle_words = _file(tmp_path, "v3-bbbb.words", opened=old, written=old)
    idle_postings = _file(tmp_path, "v3-bbbb.postings", opened=old, written=old)
    crashed_write = _file(tmp_path, ".v4-cccc.words.x1y2.tmp", opened=old, written=old)
    recently_opened = _file(tmp_path, "v8-dddd.words", opened=NOW - DAY, written=old)
    recently_written = _file(tmp_path, "v8-dddd.postings", opened=old, written=NOW - DAY)
    unrelated = _file(tmp_path, "notes.txt", opened=old, written=old)

    removed = mark_opened_and_prune(opened, now=NOW)

    assert sorted(removed) == sorted([idle_words, idle_postings, crashed_write])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [opened.name, recently_opened.name, recently_written.name, unrelated.name]
    )
    assert opened.stat().st_atime == NOW  # marked as opened now
    assert opened.stat().st_mtime == old  # its write time kept


def test_a_copy_removed_by_another_worker_first_is_not_an_error(tmp_path: Path) -> None:
    """Two workers pruning at once: a copy already gone is skipped, not raised."""
    old = NOW - HOST_COPY_IDLE_SECONDS - DAY
    opened = _file(tmp_path, "v2-aaaa.words", opened=NOW, written=NOW)
    gone = _file(tmp_path, "v1-aaaa.words", opened=old, written=old)
    assert mark_opened_and_prune(opened, now=NOW) == [gone]
    assert mark_opened_and_prune(opened, now=NOW) == []


@pytest.mark.postgres
def test_opening_a_postgres_catalog_prunes_idle_copies_of_the_host(
    postgres_databases: Callable[[str], str],
    tmp_path: Path,
    imdb_writer: Callable[..., dict[str, Path]],
) -> None:
    """A worker opening a PostgreSQL catalog copies its word index, postings and hit rows,
    marks them as opened now, and removes the host's copies idle past the limit (another
    catalog's, an older version's), leaving the recent ones."""
    cache = tmp_path / "host-cache"
    cache.mkdir()
    old = os.path.getmtime(tmp_path) - HOST_COPY_IDLE_SECONDS - DAY
    idle = [
        _file(cache, "v1-0123456789abcdef.words", opened=old, written=old),
        _file(cache, "v1-0123456789abcdef.postings", opened=old, written=old),
        _file(cache, "v1-0123456789abcdef.rows", opened=old, written=old),
    ]
    recent = _file(cache, "v2-fedcba9876543210.words", opened=old + 2 * DAY, written=old)
    recent_time = recent.stat().st_atime
    settings = Settings(
        database_url=postgres_databases("host_copies"), word_index_cache_dir=str(cache)
    )
    import_imdb(settings, list(imdb_writer().values()))
    with psycopg.connect(settings.postgres_dsn) as conn:
        meta = dict(conn.execute("SELECT key, value FROM catalog_meta").fetchall())
    version = int(meta["version"])
    words = cache / cache_name(version, meta["word_index"].split(" ")[1])
    postings = cache / postings_cache_name(version, meta["title_postings"].split(" ")[1])
    rows = cache / hit_rows_cache_name(version, meta["hit_rows"].split(" ")[1])

    engine = open_blocking_engine(settings)
    try:
        assert engine.snapshot.postings is not None
        assert engine.snapshot.hit_rows is not None
    finally:
        engine.close()

    assert not any(path.exists() for path in idle)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [words.name, postings.name, rows.name, recent.name]
    )
    assert recent.stat().st_atime == recent_time
    for copy in (words, postings, rows):  # opened now: newer than anything planted
        assert copy.stat().st_atime > old + 2 * DAY
