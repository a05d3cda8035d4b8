"""/metrics of a real ``reelsearch serve --workers 2``: totals over both worker processes.

The server runs granian with two worker processes on the small SQLite
catalog; requests go over new connections until both workers have answered
some (their pids are in the access lines), and every counter must then hold
exactly what was sent, summed over the two.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from obs_server import json_lines, served
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from reelsearch.config import Settings


def samples(base: str) -> list[Sample]:
    text = httpx.get(base + "/metrics", timeout=5).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Sample], name: str, exclude_route: str = "", **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in found
        if s.name == name
        and labels.items() <= s.labels.items()
        and s.labels.get("route") != exclude_route
    )


def wait_for(
    base: str, name: str, expected: float, exclude_route: str = "", **labels: str
) -> list[Sample]:
    """Scrape until ``name`` reads ``expected`` (the sampler ticks every 0.2 s)."""
    deadline = time.monotonic() + 10
    while True:
        found = samples(base)
        got = value(found, name, exclude_route, **labels)
        if got == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def settled_samples(base: str) -> list[Sample]:
    """A scrape once every worker has flushed what it answered before: two scrapes more
    than two sampler ticks apart agree on the request count (``/metrics`` aside)."""
    name = "reelsearch_http_request_duration_seconds_count"
    found = samples(base)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = samples(base)
        if value(again, name, "/metrics") == value(found, name, "/metrics"):
            return again
        found = again
    return found


@pytest.fixture(scope="module")
def server(
    small_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("served") / "server.log"
    # No result cache: every search reaches its route and the engine, so each stage
    # counts exactly the requests sent (fast-path hits have no stages).
    with served(
        small_settings.database_url,
        log,
        workers=2,
        REELSEARCH_METRICS_SAMPLE_SECONDS="0.2",
        REELSEARCH_CACHE="off",
    ) as base:
        wait_for(base, "reelsearch_process_workers", 2)
        yield base, log


def test_counters_sum_exactly_over_two_workers(server: tuple[str, Path]) -> None:
    """Requests, latency counts, stage counts and errors move by exactly what was sent,
    with both worker processes having answered some of them."""
    base, log = server
    # Requests made before (the fixture's readiness checks) may still be unflushed in a
    # worker: counting from them would let the total below arrive before the last 404.
    before = settled_samples(base)
    before_total = value(before, "reelsearch_http_request_duration_seconds_count", "/metrics")
    sent = {"ok": 0, "bad": 0, "missing": 0}

    def one(kind: str) -> int:
        target = {
            "ok": "/v1/search?q=matrix",
            "bad": "/v1/search?q=matrix&limit=0",
            "missing": "/v1/movies/999999",
        }[kind]
        with httpx.Client(base_url=base) as client:  # a new connection each time
            return client.get(target).status_code

    with ThreadPoolExecutor(8) as pool:
        for _ in range(20):
            kinds = ["ok"] * 8 + ["bad"] * 2 + ["missing"] * 2
            assert [{"ok": 200, "bad": 400, "missing": 404}[k] for k in kinds] == list(
                pool.map(one, kinds)
            )
            for kind in kinds:
                sent[kind] += 1
            pids = {
                line["pid"]
                for line in json_lines(log)
                if line.get("route") == "/v1/search" and line["logger"] == "reelsearch.access"
            }
            if len(pids) == 2:
                break
    assert len(pids) == 2, "one worker answered everything; the sum was not tested"
    # Each worker adds its counts to the shared files every sampler tick (0.2 s here).
    total = sum(sent.values())
    after = wait_for(
        base,
        "reelsearch_http_request_duration_seconds_count",
        before_total + total,
        exclude_route="/metrics",
    )
    # A request is counted when its answer starts and its stages when it ends: the tick
    # may fall between the two, so wait for the stages too (a lost one still fails).
    search = "/v1/search"
    engine_laps = {"route": search, "stage": "engine"}
    name = "reelsearch_search_stage_seconds_count"
    after = wait_for(base, name, value(before, name, **engine_laps) + sent["ok"], **engine_laps)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    search, movie = "/v1/search", "/v1/movies/{movie_id}"
    assert [
        sent["ok"],
        sent["bad"],
        sent["missing"],
        sent["ok"] + sent["bad"],
        sent["ok"],
        sent["bad"],
        sent["missing"],
    ] == [
        moved("reelsearch_http_requests_total", route=search, status="200"),
        moved("reelsearch_http_requests_total", route=search, status="400"),
        moved("reelsearch_http_requests_total", route=movie, status="404"),
        moved("reelsearch_http_request_duration_seconds_count", route=search),
        moved("reelsearch_search_stage_seconds_count", route=search, stage="engine"),
        moved("reelsearch_http_errors_total", route=search, status="400", code="invalid"),
        moved("reelsearch_http_errors_total", route=movie, status="404", code="not_found"),
    ]


def test_metrics_parse_and_describe_the_workers(server: tuple[str, Path]) -> None:
    """The exposition parses with prometheus-client's parser; the process, pool and catalog
    figures are sampled from both workers (gauges summed over live workers)."""
    base, _ = server
    found = samples(base)
    assert value(found, "reelsearch_process_workers") == 2
    assert value(found, "reelsearch_process_resident_memory_bytes") > 10_000_000
    assert value(found, "reelsearch_process_open_fds") > 0
    assert value(found, "reelsearch_process_cpu_seconds_total") > 0
    # Two workers, each with a read pool of the default size.
    assert 2 * Settings().db_read_pool_size == value(found, "reelsearch_db_pool_size")
    assert [
        value(found, "reelsearch_catalog_version"),
        value(found, "reelsearch_catalog_movies"),
        value(found, "reelsearch_dependency_up", dependency="catalog"),
        value(found, "reelsearch_dependency_up", dependency="migrations"),
    ] == [1, 30, 1, 1]
    assert 0 <= value(found, "reelsearch_catalog_seconds_since_import") < 3600


def test_no_label_holds_a_raw_path_or_query(server: tuple[str, Path]) -> None:
    """Labels name route templates: no query text, movie id or unknown path becomes a series."""
    base, _ = server
    with httpx.Client(base_url=base) as client:
        client.get("/v1/search", params={"q": "secretword", "limit": "3"})
        client.get("/v1/movies/123456789")
        client.get("/scanner/probe-path", params={"q": "secretword"})
    expected = {"/v1/search", "/v1/movies/{movie_id}", "<unmatched>"}
    deadline = time.monotonic() + 10
    while True:  # until the worker that answered has flushed its counts (0.2 s ticks)
        labels = {v for s in samples(base) for v in s.labels.values()}
        if expected <= labels or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [v for v in labels if "secretword" in v or "123456789" in v or "probe" in v] == []
    assert expected <= labels


def worker_pids(server_pid: int) -> list[int]:
    """The worker processes granian runs under the server process."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_killed_worker_is_replaced_without_resetting_or_doubling(
    server: tuple[str, Path],
) -> None:
    """A worker killed outright is respawned by granian: the totals it had counted stay
    (not reset, not counted twice), the live-worker gauge is back to 2 once its files'
    live gauges are dropped, and later requests add exactly."""
    base, log = server
    server_pid = int(log.with_suffix(".pid").read_text())
    total = "reelsearch_http_request_duration_seconds_count"
    with httpx.Client(base_url=base) as client:
        for _ in range(10):
            assert client.get("/v1/search?q=alien").status_code == 200
    time.sleep(0.6)  # three sampler ticks: both workers have flushed what they counted
    settled = value(samples(base), total, "/metrics")
    victim = worker_pids(server_pid)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = worker_pids(server_pid)
        if len(pids) == 2 and victim not in pids:
            break
        time.sleep(0.2)
    assert len(pids) == 2 and victim not in pids, pids
    found = wait_for(base, "reelsearch_process_workers", 2)
    assert (value(found, "reelsearch_process_workers"), value(found, total, "/metrics")) == (
        2,
        settled,
    )
    with httpx.Client(base_url=base) as client:
        for _ in range(10):
            assert client.get("/v1/search?q=alien").status_code == 200
    after = wait_for(base, total, settled + 10, exclude_route="/metrics")
    assert value(after, total, "/metrics") == settled + 10
