"""Cache figures at /metrics of a real ``reelsearch serve --workers 2`` with Redis (L1 + L2),
and of the disk level: hits, misses, 304s and errors exactly as made, and the sizes of the
levels the workers share.

Every new search misses once and is computed by one worker; every repeat is a hit, in
that worker's memory or, on the other worker, in Redis (which the first one filled):
so the totals are exact whichever worker answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis
from obs_server import json_lines, served
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from redis_port import redis_url
from reelsearch.config import Settings
from reelsearch.http.app import create_app

REDIS_DB = 13  # this suite's database on the test Redis server


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(base + "/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def event(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return found.get(("reelsearch_cache_events_total", (("event", name),)), 0.0)


@pytest.fixture(scope="module")
def server(
    small_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, str]]:
    namespace = f"obs{os.getpid()}"
    log = tmp_path_factory.mktemp("cached") / "server.log"
    with served(
        small_settings.database_url,
        log,
        workers=2,
        REELSEARCH_METRICS_SAMPLE_SECONDS="0.2",
        REELSEARCH_CACHE="memory,redis",
        REELSEARCH_REDIS_URL=redis_url(REDIS_DB),
        REELSEARCH_CACHE_NAMESPACE=namespace,
        REELSEARCH_CACHE_WARM_TOP="0",
    ) as base:
        yield base, log, namespace
    client = redis.Redis.from_url(redis_url(REDIS_DB))
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.delete(key)
    client.close()


def test_hits_misses_304s_and_errors_are_exact_over_two_workers(
    server: tuple[str, Path, str],
) -> None:
    """New searches are misses, repeats hits (memory or Redis), a matching ETag a 304,
    a bad limit an error: after both workers answered, each counter moved by exactly
    what was sent, and Redis's entries and bytes are what its namespace holds."""
    base, log, namespace = server
    before = samples(base)
    sent_new = sent_repeats = 0

    def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        with httpx.Client(base_url=base) as client:  # a new connection each time
            return client.get(path, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        for batch in range(10):
            paths = [f"/v1/search?q=matrix&limit={batch * 8 + n + 1}" for n in range(8)]
            for _ in range(3):  # new once, then twice again: each path once per round
                assert [r.status_code for r in pool.map(get, paths)] == [200] * 8
            sent_new += 8
            sent_repeats += 16
            pids = {
                line["pid"]
                for line in json_lines(log)
                if line.get("route") == "/v1/search" and line["logger"] == "reelsearch.access"
            }
            if len(pids) == 2:
                break
    assert len(pids) == 2, "one worker answered everything; the sum was not tested"
    first = get("/v1/search?q=matrix&limit=1")
    assert (
        get("/v1/search?q=matrix&limit=1", {"If-None-Match": first.headers["etag"]}).status_code
        == 304
    )
    assert get("/v1/search?q=matrix&limit=0").status_code == 400
    expected = {
        "miss": sent_new,
        "computed": sent_new,
        "hits": sent_repeats + 2,  # the ETag's request and the 304 were hits too
        "not_modified": 1,
    }

    def moved(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
        grown = {
            e: event(found, e) - event(before, e) for e in ("miss", "computed", "not_modified")
        }
        grown["hits"] = sum(event(found, e) - event(before, e) for e in ("hit_memory", "hit_redis"))
        return grown

    store = redis.Redis.from_url(redis_url(REDIS_DB))
    keys = list(store.scan_iter(match=f"{namespace}:e:*"))
    held = [len(keys), sum(int(store.strlen(key)) for key in keys)]
    store.close()
    assert held[0] == sent_new

    def shared(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> list[float]:
        name = "reelsearch_cache_shared_size"
        return [found.get((name, (("level", "redis"), ("unit", u))), -1.0)
                for u in ("entries", "bytes")]  # fmt: skip

    deadline = time.monotonic() + 15  # shared sizes are read every 10 ticks (2 s here)
    while True:
        found = samples(base)
        if (moved(found) == expected and shared(found) == held) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert expected == moved(found)
    assert held == shared(found)
    requests = "reelsearch_http_requests_total"
    errors = "reelsearch_http_errors_total"
    search = (("method", "GET"), ("route", "/v1/search"))
    assert [
        found[(requests, (*search, ("status", "304")))]
        - before.get((requests, (*search, ("status", "304"))), 0),
        found[(errors, (("code", "invalid"), ("route", "/v1/search"), ("status", "400")))]
        - before.get(
            (errors, (("code", "invalid"), ("route", "/v1/search"), ("status", "400"))), 0
        ),
    ] == [1.0, 1.0]


def test_disk_level_size_is_exported(small_settings: Settings, tmp_path: Path) -> None:
    """With memory + disk levels, the disk's entries and bytes at /metrics are what
    the level itself reports (read every 10 sampler ticks), once it holds entries."""
    settings = replace(
        small_settings,
        cache="memory,disk",
        cache_disk_path=str(tmp_path / "disk"),
        cache_warm_top=0,
        metrics_sample_seconds=0.02,
    )
    name = "reelsearch_cache_shared_size"
    with TestClient(create_app(settings)) as client:
        for limit in (1, 2, 3):
            for _ in range(3):  # the disk admits an answer L1 has seen twice
                assert client.get(f"/v1/search?q=matrix&limit={limit}").status_code == 200
        disk = client.app.state.result_cache.disk_level  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while True:
            text = client.get("/metrics").text
            found = {
                s.labels["unit"]: s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == name and s.labels["level"] == "disk"
            }
            size = disk.size()
            if [found.get("entries"), found.get("bytes")] == list(
                size
            ) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert list(size) == [found.get("entries"), found.get("bytes")]
    assert size[0] == 3 and size[1] > 0
