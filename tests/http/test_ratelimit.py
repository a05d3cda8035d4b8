"""Rate limits: a token bucket per client, in-process or shared through real Redis."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from live_server import live_server
from starlette.testclient import TestClient

from redis_port import redis_url
from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.limiter import gcra
from reelsearch.http.middleware.ratelimit import request_cost

# Database 6 of the local Redis is this test module's own (flushed per test).
REDIS_URL = redis_url(6)
TOKEN = "t0ken-" * 6


@pytest.fixture
def redis_db() -> Iterator[str]:
    """The test Redis database, emptied before and after the test."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    yield REDIS_URL
    client.flushdb()
    client.close()


def _client(settings: Settings, address: str = "192.0.2.1", **overrides: Any) -> TestClient:
    limited = replace(settings, rate_limit=1.0, rate_limit_burst=3, **overrides)
    return TestClient(create_app(limited), client=(address, 1234))


@pytest.mark.parametrize(
    ("path", "query", "cost"),
    [
        ("/v1/search", b"q=alien", 1),
        ("/v1/search", b"q=alien&facets=genres", 2),
        ("/v1/search", b"q=a", 2),
        ("/v1/search", b"", 2),
        ("/v1/search", b"q=alien&offset=5000", 6),
        ("/v1/autocomplete", b"q=a", 1),
        ("/v1/movies/1", b"", 1),
        ("/v1/search/export", b"", 10),
        ("/v1/search", b"q=%ff", 1),
    ],  # fmt: skip
)
def test_request_cost(path: str, query: bytes, cost: int) -> None:
    """Facets, empty or one-letter q and each 1,000 skipped hits cost a token more."""
    assert cost == request_cost(path, query)


def _cursor(offset: int) -> bytes:
    """A cursor as the service issues them (the route checks its search; the cost reads
    only the page it asks for)."""
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset, "f": 1})).rstrip(b"=")


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        (b"q=alien&%6Fffset=5000", 6),
        (b"q=alien&offset=%35000", 6),
        (b"q=alien&%66acets=genres", 2),
        (b"%71=alien", 1),
        (b"q=alien&cursor=" + _cursor(5000), 6),
        (b"q=alien&cursor=" + _cursor(999), 1),
        (b"q=alien&cursor=not-a-cursor", 1),
    ],  # fmt: skip
)
def test_request_cost_reads_what_the_route_reads(query: bytes, cost: int) -> None:
    """A %-encoded name or offset costs what the plain one does, and a cursor's page
    costs what the same offset does: neither is a way around the deep-page price."""
    assert cost == request_cost("/v1/search", query)


def test_gcra_is_a_token_bucket() -> None:
    """Burst 3 at 1/s: three at once, the fourth waits 1 s; after 2 s, two more."""
    tat, decisions = 0.0, []
    for _ in range(4):
        tat, decision = gcra(tat, 100.0, 1, 1.0, 3)
        decisions.append((decision.allowed, decision.remaining, round(decision.retry_after, 6)))
    assert [(True, 2, 0.0), (True, 1, 0.0), (True, 0, 0.0), (False, 0, 1.0)] == decisions
    tat, later = gcra(tat, 102.0, 2, 1.0, 3)
    assert (True, 0) == (later.allowed, later.remaining)


def test_burst_then_429_with_retry_after_and_ratelimit_headers(small_settings: Settings) -> None:
    """Three requests pass with RateLimit-Remaining 2, 1, 0; the fourth is a JSON 429
    with Retry-After; probes are never limited."""
    with _client(small_settings) as client:
        answers = [client.get("/v1/search?q=alien") for _ in range(4)]
        health = client.get("/health")
    assert [200, 200, 200, 429] == [a.status_code for a in answers]
    assert ["2", "1", "0", "0"] == [a.headers["ratelimit-remaining"] for a in answers]
    assert {"3"} == {a.headers["ratelimit-limit"] for a in answers}
    refused = answers[3]
    assert ("1", "rate_limited") == (
        refused.headers["retry-after"],
        refused.json()["error"]["code"],
    )
    assert "nosniff" == refused.headers["x-content-type-options"]
    assert (200, None) == (health.status_code, health.headers.get("ratelimit-limit"))


def test_costlier_requests_take_more_tokens(small_settings: Settings) -> None:
    """A faceted search takes 2 of 3 tokens; a second one no longer fits."""
    with _client(small_settings) as client:
        first = client.get("/v1/search?q=alien&facets=genres")
        second = client.get("/v1/search?q=alien&facets=genres")
    assert (200, "1") == (first.status_code, first.headers["ratelimit-remaining"])
    assert 429 == second.status_code


def test_clients_behind_a_trusted_proxy_have_their_own_buckets(small_settings: Settings) -> None:
    """From a trusted proxy X-Forwarded-For names the client; from anyone else it is ignored."""

    def via(client: TestClient, forwarded: str) -> int:
        return client.get("/v1/search?q=a1", headers={"X-Forwarded-For": forwarded}).status_code

    with _client(small_settings, "10.0.0.5", trusted_proxies="10.0.0.0/8") as proxied:
        first = [via(proxied, "203.0.113.9, 10.0.0.7") for _ in range(3)]
        assert [200, 200, 200, 429] == [*first, via(proxied, "203.0.113.9")]
        assert 200 == via(proxied, "198.51.100.4")
    with _client(small_settings, "192.0.2.50", trusted_proxies="10.0.0.0/8") as direct:
        statuses = [via(direct, f"203.0.113.{n}") for n in range(4)]
    assert [200, 200, 200, 429] == statuses


def test_the_admin_token_has_its_own_bucket(small_settings: Settings) -> None:
    """A client sending the admin token is counted apart from its address."""
    with _client(small_settings, admin_token=TOKEN) as client:
        for _ in range(3):
            client.get("/v1/search?q=alien")
        anonymous = client.get("/v1/search?q=alien")
        admin = client.get("/v1/search?q=alien", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (429, 200) == (anonymous.status_code, admin.status_code)


@pytest.mark.redis
def test_two_apps_share_buckets_through_redis(small_settings: Settings, redis_db: str) -> None:
    """With REELSEARCH_REDIS_URL two app instances spend one bucket per client."""
    with (
        _client(small_settings, redis_url=redis_db) as one,
        _client(small_settings, redis_url=redis_db) as two,
    ):
        statuses = [(one if n % 2 else two).get("/v1/search?q=alien").status_code for n in range(5)]
    assert [200, 200, 200, 429, 429] == statuses


@pytest.mark.redis
def test_two_worker_processes_share_the_limit(
    small_db: Path, tmp_path: Path, redis_db: str
) -> None:
    """A real 2-worker server with Redis allows exactly the burst, whichever worker answers."""
    env = {"REELSEARCH_RATE_LIMIT": "0.01", "REELSEARCH_RATE_LIMIT_BURST": "5",
           "REELSEARCH_REDIS_URL": redis_db}  # fmt: skip
    with live_server(f"sqlite:///{small_db}", tmp_path / "s.log", workers=2, env=env) as server:
        statuses = [
            httpx.get(
                server.url + "/v1/search?q=alien", headers={"Connection": "close"}
            ).status_code
            for _ in range(10)
        ]
    assert [200] * 5 + [429] * 5 == statuses


def test_redis_down_fails_open(small_settings: Settings) -> None:
    """A dead Redis (a closed port) lets requests through rather than failing them."""
    with _client(small_settings, redis_url="redis://127.0.0.1:1/0") as client:
        statuses = [client.get("/v1/search?q=alien").status_code for _ in range(5)]
    assert [200] * 5 == statuses


def test_wrong_admin_tokens_are_slowed(small_settings: Settings) -> None:
    """A wrong admin token costs 5 extra tokens, on /ready too: with burst 10, two guesses
    pass and the third is a 429; the right token is its own client."""
    app = create_app(replace(small_settings, admin_token=TOKEN, rate_limit=0.01,
                             rate_limit_burst=10))  # fmt: skip
    with TestClient(app, client=("192.0.2.9", 1)) as client:
        guesses = [client.get("/ready", headers={"Authorization": f"Bearer guess{n}"})
                   for n in range(3)]  # fmt: skip
        right = client.get("/ready", headers={"Authorization": f"Bearer {TOKEN}"})
        plain = client.get("/ready")
    assert [200, 200, 429] == [g.status_code for g in guesses]
    assert (200, 200) == (right.status_code, plain.status_code)
