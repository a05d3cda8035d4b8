# ruff: noqa: F811  (the fixtures come from test_caching_processes)
"""A movie write (PUT /v1/movies/...) against two real server processes with warm caches
(decision 0015):
with Redis each process's memory level drops what the write reaches through pub/sub,
before its own catalog poll; without Redis, through the catalog version each polls.
What the write does not reach stays cached, and nothing stale is served.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from test_caching_processes import (  # noqa: F401
    ADMIN,
    Server,
    _fresh_answer,
    flushed_redis,
    servers,
)

from reelsearch.config import Settings

REACHED, UNREACHED = "q=heat&limit=5", "q=casablanca&limit=5"


def write_heat_wave(server: Server) -> int:
    """Add "Heat Wave" through the documents API of ``server``; the new catalog version."""
    response = httpx.put(
        f"{server.url}/v1/movies/test:heatwave",
        json={"title": "Heat Wave", "year": 2020, "votes": 900_000},
        headers=ADMIN,
        timeout=15,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["catalog_version"])


def warm(server: Server) -> None:
    for query_string in (REACHED, UNREACHED):
        for _ in range(2):
            assert server.get(f"/v1/search?{query_string}").status_code == 200


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def counter(server: Server, name: str, cause: str) -> int:
    return int(server.stats()[name].get(cause, 0))  # type: ignore[attr-defined]


def test_a_write_drops_both_memory_levels_through_pubsub(
    small_copy: Settings,
    servers: Callable[..., Server],
    flushed_redis: str,
) -> None:
    """Process one takes the write, follows it (its poll) and publishes it; process two,
    whose poll is a minute away, drops the reached entry from its memory through pub/sub while still
    serving the old catalog, and keeps answering the unreached search from memory."""
    env = {"REELSEARCH_REDIS_URL": flushed_redis, "REELSEARCH_CACHE": "memory,redis"}
    one = servers(small_copy, **env)
    two = servers(small_copy, REELSEARCH_CATALOG_POLL_SECONDS="60", **env)
    for server in (one, two):
        warm(server)
    before = two.catalog_version()
    version = write_heat_wave(one)
    wait_for(lambda: one.catalog_version() == version, "process one never followed the write")
    wait_for(lambda: counter(two, "invalidated_entries", "write") >= 1,
             "process two's memory never dropped the reached entry")  # fmt: skip
    assert two.catalog_version() == before  # its own poll has not run: pub/sub did it
    assert counter(one, "invalidations", "write") == 1
    assert counter(one, "invalidations", "catalog") == 0  # the keys were kept
    fresh = _fresh_answer(small_copy, REACHED)
    assert one.get(f"/v1/search?{REACHED}").content == fresh
    computed = int(two.stats()["computed"])  # type: ignore[call-overload]
    hits = int(two.stats()["hits"].get("memory", 0))  # type: ignore[attr-defined]
    assert two.get(f"/v1/search?{UNREACHED}").status_code == 200
    assert int(two.stats()["hits"].get("memory", 0)) == hits + 1  # type: ignore[attr-defined]
    assert int(two.stats()["computed"]) == computed  # type: ignore[call-overload]


def test_without_redis_each_process_follows_the_polled_version(
    small_copy: Settings,
    servers: Callable[..., Server],
) -> None:
    """Without Redis both processes (memory and a shared disk level) drop the reached
    entry once their poll sees the write's version: both then send the fresh answer, and
    answer the unreached search without searching again."""
    env = {"REELSEARCH_CACHE": "memory,disk"}
    one, two = servers(small_copy, **env), servers(small_copy, **env)
    for server in (one, two):
        warm(server)
    old = one.get(f"/v1/search?{REACHED}").content
    version = write_heat_wave(one)
    fresh = _fresh_answer(small_copy, REACHED)
    assert fresh != old
    for server in (one, two):
        wait_for(lambda s=server: s.catalog_version() == version, "a process never followed")
        computed = int(server.stats()["computed"])  # type: ignore[call-overload]
        for _ in range(2):  # the first from the database or the disk, then memory
            assert server.get(f"/v1/search?{REACHED}").content == fresh
        assert server.get(f"/v1/search?{UNREACHED}").status_code == 200
        assert int(server.stats()["computed"]) <= computed + 1  # type: ignore[call-overload]
        assert counter(server, "invalidations", "write") == 1
        assert counter(server, "invalidations", "catalog") == 0
