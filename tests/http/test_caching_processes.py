"""The result cache across real server processes: same bytes everywhere, one search per key
across processes, and nothing from an old catalog once a process serves a new one.

Each server is ``uvicorn --factory reelsearch.http.app:app_from_env`` in its own process,
configured through REELSEARCH_* variables, on a loopback port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import psycopg
import pytest
import redis

from child_processes import free_port
from conftest import SMALL_AKAS, SMALL_TITLES, TEST_DEADLINE_MS, write_imdb
from redis_port import redis_url
from reelsearch.cache.keys import canonical_query
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.http.search_cache import render_search
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.query import parse_search

APP_FACTORY = "reelsearch.http.app:app_from_env"
# The admin token must have at least 32 characters.
ADMIN_TOKEN = "cache-admin-token-" * 2
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
REDIS_URL = redis_url(8)  # this suite's second database
# The search the single-flight test sends: a year among its words, so it reads the
# (locked) catalog where the title postings answer a plain or filtered one in memory.
SEARCH = "/v1/search?q=alien+1979"


class Server:
    """One reelsearch server process."""

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "REELSEARCH_DATABASE_URL": settings.database_url,
            "REELSEARCH_ADMIN_TOKEN": ADMIN_TOKEN,
            "REELSEARCH_CATALOG_POLL_SECONDS": "0.2",
            "REELSEARCH_CACHE_WARM_TOP": "0",
            # What these tests count is reads and bytes, not time: a loaded machine must not
            # turn a slow search into a 503 (the deadline has tests of its own).
            "REELSEARCH_SEARCH_DEADLINE_MS": str(TEST_DEADLINE_MS),
            **env,
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        argv = [sys.executable, "-m", "uvicorn", "--factory", APP_FACTORY, "--host",
                "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=15, **kwargs)  # type: ignore[arg-type]

    def stats(self) -> dict[str, object]:
        return self.get("/v1/admin/cache", headers=ADMIN).json()  # type: ignore[no-any-return]

    def catalog_version(self) -> int:
        return int(self.get("/ready", headers=ADMIN).json()["catalog_version"])


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    with ExitStack() as stack:

        def start(settings: Settings, **env: str) -> Server:
            server = Server(settings, tmp_path / f"server{free_port()}.log", **env)
            stack.callback(server.stop)
            return server.start()

        yield start


def test_same_bytes_and_etag_in_every_process_and_after_restart(
    small_copy: Settings, servers: Callable[..., Server]
) -> None:
    """Two processes computing one search on their own (no shared level) send the same
    bytes and ETag; so does a restarted process."""
    queries = ["/v1/search?q=star", "/v1/search?q=toy&facets=genres,decade&limit=2"]
    one = servers(small_copy, REELSEARCH_CACHE="memory")
    two = servers(small_copy, REELSEARCH_CACHE="memory")
    first = [one.get(q) for q in queries]
    second = [two.get(q) for q in queries]
    for a, b in zip(first, second, strict=True):
        assert (a.content, a.headers["etag"]) == (b.content, b.headers["etag"])
        assert a.headers["last-modified"] == b.headers["last-modified"]
    one.stop()
    one.start()
    again = [one.get(q) for q in queries]
    assert [a.content for a in first] == [a.content for a in again]
    assert [a.headers["etag"] for a in first] == [a.headers["etag"] for a in again]


@pytest.fixture
def flushed_redis() -> Iterator[str]:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
        client.flushdb()
    except (redis.RedisError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is needed: {exc}")
        pytest.skip(f"Redis is not reachable: {exc}")
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.mark.postgres
def test_single_flight_across_two_processes(
    small_pg_settings: Settings, servers: Callable[..., Server], flushed_redis: str
) -> None:
    """16 concurrent requests for one new search, split over two processes, run one search.

    The catalog table is locked meanwhile so every request is in flight at once (a year
    among the words: a search the title postings and hit rows answer reads no table); the
    processes' own counters of searches run must add up to one.
    """
    env = {"REELSEARCH_REDIS_URL": flushed_redis, "REELSEARCH_CACHE": "memory,redis",
           "REELSEARCH_CACHE_LOCK_SECONDS": "30"}  # fmt: skip
    one, two = servers(small_pg_settings, **env), servers(small_pg_settings, **env)
    answers: list[httpx.Response] = []
    dsn = small_pg_settings.postgres_dsn
    with psycopg.connect(dsn) as blocker:
        blocker.execute("LOCK TABLE movies IN ACCESS EXCLUSIVE MODE")
        threads = [
            threading.Thread(target=lambda s=server: answers.append(s.get(SEARCH)))
            for server in [one, two] * 8
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 25
        # Released only once the 15 others wait on the one search (in their process, or on
        # the other's Redis lock): a miss is counted before the lock is asked for, so
        # waiting for 16 misses could release the table while one process had not yet
        # asked, and it then took the lock after the first search was done.
        while (
            sum(
                int(s["singleflight_waits"]) + int(s["singleflight_remote_waits"])  # type: ignore[call-overload]
                for s in (one.stats(), two.stats())
            )
            < 15
        ):
            assert time.monotonic() < deadline, "the requests did not all arrive"
            time.sleep(0.05)
        # every request is now waiting: on the table lock, or on the one search
        blocker.rollback()  # releases the table
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [200] * 16
    assert len({a.content for a in answers}) == 1
    stats = [one.stats(), two.stats()]
    assert sum(int(s["computed"]) for s in stats) == 1  # type: ignore[call-overload]
    assert (
        sum(
            int(s["singleflight_waits"]) + int(s["singleflight_remote_waits"])  # type: ignore[call-overload]
            for s in stats
        )
        == 15
    )


def test_admin_invalidation_reaches_every_process(
    small_copy: Settings, servers: Callable[..., Server], flushed_redis: str
) -> None:
    """An invalidation sent to one process drops the entry from Redis and, through pub/sub,
    from the other process's memory: both compute the search again."""
    env = {"REELSEARCH_REDIS_URL": flushed_redis, "REELSEARCH_CACHE": "memory,redis"}
    one, two = servers(small_copy, **env), servers(small_copy, **env)
    for server in (one, two):
        for _ in range(2):
            assert server.get("/v1/search?q=heat").status_code == 200
    computed = [int(s.stats()["computed"]) for s in (one, two)]  # type: ignore[call-overload]
    assert sum(computed) == 1  # the second process found the first's answer in Redis
    response = httpx.post(f"{one.url}/v1/admin/cache/invalidate", json={"tag": "p:heat"},
                          headers=ADMIN, timeout=10)  # fmt: skip
    assert response.status_code == 200 and response.json()["dropped"] >= 2
    deadline = time.monotonic() + 10
    while int(two.stats()["invalidations"].get("remote", 0)) < 1:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the other process never heard of it"
        time.sleep(0.05)
    assert two.get("/v1/search?q=heat").status_code == 200
    assert int(two.stats()["computed"]) == computed[1] + 1  # type: ignore[call-overload]


def _fresh_answer(settings: Settings, query_string: str) -> bytes:
    """What a search answers on the catalog now, computed without any server or cache."""
    engine = open_blocking_engine(settings)
    try:
        query = canonical_query(parse_search(parse_qsl(query_string, keep_blank_values=True)))
        return render_search(engine.search(query))
    finally:
        engine.close()


def test_import_invalidates_across_two_processes(
    small_copy: Settings, servers: Callable[..., Server], tmp_path: Path
) -> None:
    """After an import each process, once it serves the new catalog, answers from it only:
    never an answer computed on the old catalog (from its memory or the shared disk)."""
    query_string = "q=matrix&limit=5"
    env = {"REELSEARCH_CACHE": "memory,disk"}
    one, two = servers(small_copy, **env), servers(small_copy, **env)
    old = [server.get(f"/v1/search?{query_string}") for server in (one, two)]
    assert old[0].content == old[1].content == _fresh_answer(small_copy, query_string)
    renamed = [
        (row[0], row[1], "The Matrix Resurrections", *row[3:]) if row[2] == "The Matrix" else row
        for row in SMALL_TITLES
    ]
    files = write_imdb(tmp_path / "new", renamed, SMALL_AKAS)
    before = one.catalog_version()
    import_imdb(small_copy, list(files.values()))
    new_answer = _fresh_answer(small_copy, query_string)
    assert new_answer != old[0].content
    for server in (one, two):
        deadline = time.monotonic() + 10
        while server.catalog_version() == before:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for _ in range(3):  # the first from the database, then the fast path
            response = server.get(f"/v1/search?{query_string}")
            assert new_answer == response.content
            assert old[0].headers["etag"] != response.headers["etag"]
    assert sum(int(s.stats()["invalidations"].get("catalog", 0)) for s in (one, two)) == 2  # type: ignore[attr-defined]


def test_redis_down_still_answers(small_copy: Settings, servers: Callable[..., Server]) -> None:
    """A server whose Redis is a dead port answers every search, promptly, from its
    other levels and the database."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    server = servers(replace(small_copy), REELSEARCH_REDIS_URL=f"redis://127.0.0.1:{dead}/0",
                     REELSEARCH_CACHE="memory,redis")  # fmt: skip
    started = time.perf_counter()
    answers = [server.get(f"/v1/search?q={q}") for q in ("alien", "heat", "alien", "star")]
    assert [a.status_code for a in answers] == [200] * 4
    assert time.perf_counter() - started < 5
    assert int(server.stats()["level_errors"]["redis"]) >= 1  # type: ignore[index]
