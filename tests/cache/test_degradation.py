"""Redis down, hung or restarted, and a broken disk: answers keep coming, nothing waits long."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.disk import DiskLevel
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.redis import RedisGuard, RedisLevel, open_redis

from .conftest import TcpProxy, dead_port

MakeEntry = Callable[..., CachedResponse]
TIMEOUT = 0.1


def redis_level(port: int, retry: float = 0.3) -> RedisLevel:
    url = f"redis://127.0.0.1:{port}/7"
    guard = RedisGuard(open_redis(url, timeout=TIMEOUT, pool_size=4), retry, CacheCounters())
    return RedisLevel(guard, 60.0, "test")


async def test_redis_down_is_a_quick_miss(make_entry: MakeEntry) -> None:
    """Nothing listening: get is None, set is skipped, no error, each within the timeout."""
    level = redis_level(dead_port())
    started = time.perf_counter()
    await level.set("k", make_entry())
    assert await level.get("k") is None
    assert await level.delete_tag("w:x") == 0
    assert time.perf_counter() - started < 5 * TIMEOUT
    assert level.guard.counters.level_errors["redis"] >= 1
    await level.guard.client.aclose(close_connection_pool=True)


async def test_hung_redis_costs_one_timeout_then_is_skipped(make_entry: MakeEntry) -> None:
    """A Redis that accepts but never answers: the first call waits the timeout, later ones
    skip it at once until the retry interval passes."""
    hung = TcpProxy(silent=True)
    await hung.start()
    level = redis_level(hung.port, retry=30.0)
    started = time.perf_counter()
    assert await level.get("k") is None
    first = time.perf_counter() - started
    assert TIMEOUT * 0.9 <= first < TIMEOUT * 8
    started = time.perf_counter()
    for _ in range(20):
        assert await level.get("k") is None
    assert time.perf_counter() - started < TIMEOUT  # 20 calls, none waited
    assert level.guard.is_up is False
    await level.guard.client.aclose(close_connection_pool=True)
    await hung.stop()


@pytest.mark.usefixtures("redis_url")
async def test_redis_restart_reconnects_by_itself(proxy: TcpProxy, make_entry: MakeEntry) -> None:
    """Redis goes away (every connection cut) and comes back: after the retry interval the
    level works again through new connections, with no action taken."""
    level = redis_level(proxy.port, retry=0.2)
    await level.set("k", make_entry(b"before"))
    assert (await level.get("k")).body == b"before"  # type: ignore[union-attr]
    await proxy.stop()
    assert await level.get("k") is None  # down: a miss, not an error
    await proxy.start()  # same port: Redis is back
    time.sleep(0.25)
    found = await level.get("k")
    assert found is not None and found.body == b"before"
    await level.set("k2", make_entry(b"after"))
    assert (await level.get("k2")).body == b"after"  # type: ignore[union-attr]
    await level.guard.client.aclose(close_connection_pool=True)


async def test_unusable_disk_is_logged_and_skipped(
    tmp_path: Path, make_entry: MakeEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """A disk level whose folder can't be made (a file is in the way) logs once and acts
    as an empty level: no error reaches the caller."""
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="reelsearch.cache"):
        level = DiskLevel(blocker, 1_000_000, 60.0, CacheCounters())
        await level.set("k", make_entry())
        assert await level.get("k") is None
    assert any("disk cache open" in record.getMessage() for record in caplog.records)
    assert level.counters.level_errors["disk"] == 1


async def test_disk_write_failure_is_skipped(
    tmp_path: Path, make_entry: MakeEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """A write the disk refuses (its database file made read-only underneath) is logged and
    skipped; reads keep working."""
    level = DiskLevel(tmp_path / "cache", 1_000_000, 60.0, CacheCounters())
    await level.set("kept", make_entry(b"kept"))
    assert level._cache is not None
    level._cache._sql("PRAGMA query_only = ON")  # the disk now refuses writes
    with caplog.at_level(logging.WARNING, logger="reelsearch.cache"):
        await level.set("new", make_entry(b"new"))
    assert await level.get("new") is None
    assert (await level.get("kept")).body == b"kept"  # type: ignore[union-attr]
    assert any("disk cache set" in record.getMessage() for record in caplog.records)
    await level.close()
