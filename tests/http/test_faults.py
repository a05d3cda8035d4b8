"""Quick faults: a Redis that stops and starts under the rate limiter, and hostile queries.

The long versions, under load on a real 2-worker server with the error window
and recovery time measured, are in bench/faults.py (figures in bench/RESULTS.md).
These run in seconds and never touch the shared PostgreSQL or Redis: the Redis
here is a private ``redis-server`` on a free port, started and stopped by PID.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote

import pytest
import redis
from live_server import free_port
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.limiter import RedisLimiter


class PrivateRedis:
    """A ``redis-server`` of this test alone, no persistence: a restart empties it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"]  # fmt: skip
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.is_up():
            assert self.proc.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def is_up(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private Redis on a free loopback port, stopped after the test whatever happens."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_rate_limits_fail_open_while_redis_is_down_and_hold_again_after(
    small_settings: Settings, private_redis: PrivateRedis
) -> None:
    """Burst 2, no refill: 200, 200, 429; Redis stopped: every request 200 (fail open);
    Redis started again, empty: the same client gets a fresh bucket, 200, 200, 429.

    The restarted server has lost the Lua script too: the limiter loads it again.
    """
    settings = replace(
        small_settings, rate_limit=0.001, rate_limit_burst=2, redis_url=private_redis.url
    )
    path = "/v1/search?q=alien"
    with TestClient(create_app(settings), client=("192.0.2.14", 1)) as client:
        before = [client.get(path).status_code for _ in range(3)]
        private_redis.stop()
        started = time.monotonic()
        during = [client.get(path).status_code for _ in range(4)]
        down_seconds = time.monotonic() - started
        private_redis.start()
        time.sleep(RedisLimiter.PAUSE_AFTER_FAILURE)  # the limiter asks Redis again after it
        after = [client.get(path).status_code for _ in range(3)]
    assert [200, 200, 429] == before
    assert [200] * 4 == during
    # A refused connection is immediate: no request waits for the 0.5 s timeouts.
    assert down_seconds < 2.0
    assert [200, 200, 429] == after


def test_a_hung_redis_costs_one_timeout_a_second_not_one_per_request(
    small_settings: Settings, private_redis: PrivateRedis
) -> None:
    """Redis stopped with SIGSTOP (it accepts, never answers): the first request waits
    for the 0.5 s socket timeout, the next ones skip Redis for a second (all 200);
    after SIGCONT the limit holds again with the bucket as it was (nothing lost)."""
    settings = replace(
        small_settings, rate_limit=0.001, rate_limit_burst=2, redis_url=private_redis.url
    )
    path = "/v1/search?q=alien"
    assert private_redis.proc is not None
    with TestClient(create_app(settings), client=("192.0.2.15", 1)) as client:
        before = [client.get(path).status_code for _ in range(3)]
        private_redis.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            during = [client.get(path).status_code for _ in range(10)]
            hung_seconds = time.monotonic() - started
        finally:
            private_redis.proc.send_signal(signal.SIGCONT)
        time.sleep(RedisLimiter.PAUSE_AFTER_FAILURE)
        after = [client.get(path).status_code for _ in range(2)]
    assert [200, 200, 429] == before
    assert [200] * 10 == during
    # One 0.5 s timeout plus ten quick searches; one timeout each would be 5 s.
    assert hung_seconds < 2.0
    assert [429, 429] == after


# Issue 10's adversarial inputs and others of their kinds, with the answer each gets
# (200: searched, 400: refused with a reason, 414: a request target over 8 KiB, refused
# before the search is parsed). None may be a 5xx.
HOSTILE = [
    ("q=" + "x" * 300, 400),  # over the 256-character limit
    ("q=" + "a" * 9000, 414),  # over the 8 KiB request-target limit
    ("q=%zz", 400),  # bad percent-encoding
    ("q=%E2%82", 400),  # truncated UTF-8
    ("q=a&offset=99999999999999999999999", 400),  # an offset past every bound
    ("q=star&offset=10001", 400),
    ("q=" + quote("\x00"), 400),
    ("q=" + "a" * 512, 400),  # a 512-letter word: over the limit too
    ("q=" + "b" * 255, 200),  # the longest word accepted: no title has it
    ("q=" + "+".join(["the"] * 60), 400),  # many stop words: 60 words, over the 32-word limit
    ("q=" + "+".join(["love"] * 50), 400),  # a common word repeated: over the word limit
    ("q=" + "+".join(["love"] * 32), 200),  # ... and at the limit
    ("q=" + quote("\ufb03" * 200), 400),  # ligatures: 600 letters after NFKD, over 256
    ("q=" + quote("\ufb03" * 80), 200),  # ... and 240 letters, under it
    ("q=" + quote("\u6c34\u706b\u98a8\u96f7" * 50), 200),  # a script without spaces
    ("q=" + quote('"' * 100 + "-" * 100), 200),
    ("q=star&offset=10000&limit=100", 200),  # the deepest page
    ("q=&sort=-votes&offset=9990&limit=100&facets=genres,decade", 200),
]


def test_hostile_queries_get_an_answer_or_a_reason_never_a_5xx(client: TestClient) -> None:
    """Each adversarial query gets its expected status with a JSON body; a normal search
    asked before and after them gets the same answer (nothing was left broken)."""
    before = client.get("/v1/search?q=matrix").json()["hits"]
    statuses = []
    for query, _ in HOSTILE:
        response = client.get("/v1/search?" + query)
        body = response.json()
        statuses.append(response.status_code)
        if response.status_code in (400, 414):
            assert {"code", "message", "param"} <= set(body["error"])
    after = client.get("/v1/search?q=matrix").json()["hits"]
    assert [expected for _, expected in HOSTILE] == statuses
    assert [hit["id"] for hit in before] == [hit["id"] for hit in after]
