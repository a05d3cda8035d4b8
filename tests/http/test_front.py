"""The front layer (http/middleware/front.py) and what it made cheaper keep their behaviour.

One layer now observes, adds headers, gates, answers L1 hits and routes fixed
paths; the disconnect watch starts late and the access line is written
directly. Each test holds one thing those shortcuts must not change.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.disconnect import ARM_AFTER_SECONDS, unless_disconnected
from reelsearch.observability.logging import AccessLineWriter, configure_logging
from reelsearch.search.deadline import Deadline

SECURITY = ("x-content-type-options", "referrer-policy", "x-frame-options", "server")


@pytest.fixture
def cached_client(small_settings: Settings) -> Iterator[TestClient]:
    # A first sighting is stored at once (no doorkeeper): the second request is an L1 hit.
    settings = replace(small_settings, cache="memory", log_format="json", cache_doorkeeper=False)
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_l1_hit_gets_the_headers_and_the_request_id(cached_client: TestClient) -> None:
    """A search answered by the fast path carries the security headers, the client's
    request id and the stored body, byte for byte the routed answer."""
    routed = cached_client.get("/v1/search?q=alien")
    counters = cached_client.app.state.cache_counters  # type: ignore[attr-defined]
    before = counters.fast_path
    hit = cached_client.get("/v1/search?q=alien", headers={"X-Request-ID": "front-1"})
    assert (1, routed.content, "front-1") == (
        counters.fast_path - before,
        hit.content,
        hit.headers["x-request-id"],
    )
    assert all(hit.headers.get(name) for name in SECURITY), hit.headers


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/health", 200, None),
        ("HEAD", "/health", 200, None),
        ("POST", "/health", 405, "GET, HEAD"),
        ("GET", "/health/", 404, None),
        ("GET", "/openapi.json", 200, None),
        ("DELETE", "/v1/search", 405, "GET, HEAD"),
    ],  # fmt: skip
)
def test_fixed_paths_answer_as_the_router_would(
    cached_client: TestClient, method: str, path: str, status: int, allow: str | None
) -> None:
    """Fixed paths are found by a dict lookup: the status, Allow on a 405 and the JSON
    error bodies are those Starlette's router gives."""
    response = cached_client.request(method, path)
    allowed = response.headers.get("allow")
    assert (status, allow) == (
        response.status_code,
        ", ".join(sorted(allowed.split(", "))) if allowed else None,
    )
    if status >= 400:
        assert response.json()["error"]["code"] in ("method_not_allowed", "not_found")


def test_a_route_error_is_answered_by_the_app_handlers(cached_client: TestClient) -> None:
    """A bad parameter on a fixed path is still the app's 400 JSON error."""
    response = cached_client.get("/v1/search?limit=0")
    assert (400, "limit") == (response.status_code, response.json()["error"]["param"])


def test_a_presented_api_key_is_checked_even_when_none_are_configured(
    cached_client: TestClient,
) -> None:
    """With no keys configured, a request that sends one still goes through the key check
    (and is refused): the shortcut is only for requests that send none."""
    cached_client.get("/v1/search?q=alien")  # an L1 entry the fast path could send
    response = cached_client.get("/v1/search?q=alien", headers={"X-API-Key": "nope"})
    assert (401, "invalid_api_key") == (
        response.status_code,
        response.json()["error"]["code"],
    )


def test_a_short_search_never_reads_the_receive_channel() -> None:
    """A search that ends before ARM_AFTER_SECONDS starts no watcher: receive is not called."""
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"type": "http.disconnect"}

    async def work() -> str:
        return "done"

    async def main() -> tuple[str, int, bool]:
        deadline = Deadline(10)
        found = await unless_disconnected(receive, deadline, work)
        await asyncio.sleep(ARM_AFTER_SECONDS * 2)  # a timer left behind would fire now
        return found, calls, deadline.is_cancelled

    assert ("done", 0, False) == asyncio.run(main())


def test_a_longer_search_is_cancelled_when_its_client_leaves() -> None:
    """A search still waiting after ARM_AFTER_SECONDS is watched: a disconnect then
    cancels its deadline."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def main() -> bool:
        deadline = Deadline(10)

        async def work() -> bool:
            while not deadline.is_cancelled:
                await asyncio.sleep(0.001)
            return True

        return await asyncio.wait_for(unless_disconnected(receive, deadline, work), 5)

    assert asyncio.run(main()) is True


def test_time_queued_for_a_connection_does_not_start_the_watch() -> None:
    """A search queued for a connection (Deadline.queue) for longer than ARM_AFTER_SECONDS,
    then done at once, never reads the receive channel: only its own time counts."""
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"type": "http.disconnect"}

    async def main() -> tuple[str, int, bool]:
        deadline = Deadline(10)

        async def work() -> str:
            deadline.queue()
            await asyncio.sleep(ARM_AFTER_SECONDS * 4)  # waiting for a connection
            deadline.resume()
            return "done"

        found = await unless_disconnected(receive, deadline, work)
        await asyncio.sleep(ARM_AFTER_SECONDS * 2)  # a timer left behind would fire now
        return found, calls, deadline.is_cancelled

    assert ("done", 0, False) == asyncio.run(main())


def test_a_search_is_watched_after_its_own_time_once_it_has_its_connection() -> None:
    """After a queue, the watch starts ARM_AFTER_SECONDS after ``resume``, not before,
    and a disconnect then cancels the search's deadline."""
    first_receive: list[float] = []

    async def receive() -> dict[str, Any]:
        first_receive.append(time.monotonic())
        return {"type": "http.disconnect"}

    async def main() -> tuple[bool, float]:
        deadline = Deadline(10)
        resumed = 0.0

        async def work() -> bool:
            nonlocal resumed
            deadline.queue()
            await asyncio.sleep(ARM_AFTER_SECONDS * 3)
            deadline.resume()
            resumed = time.monotonic()
            while not deadline.is_cancelled:
                await asyncio.sleep(0.001)
            return True

        done = await asyncio.wait_for(unless_disconnected(receive, deadline, work), 5)
        return done, first_receive[0] - resumed

    done, watched_after = asyncio.run(main())
    assert done is True
    # Timers may fire up to a millisecond early (uvloop and asyncio round to it).
    assert watched_after >= ARM_AFTER_SECONDS - 0.001


def test_the_direct_access_line_is_the_formatted_record(small_settings: Settings) -> None:
    """Written directly, the access line has the keys and values, in the same order, the
    JSON formatter gives the same request as a log record (time aside)."""
    stream = io.StringIO()
    configure_logging(replace(small_settings, log_format="json"), stream)
    writer = AccessLineWriter(logging.getLogger("reelsearch.access"))
    writer.write("GET", "/v1/movies/{movie_id}", 404, 0.0123456, "id-1", "hit")
    writer._write_record("GET", "/v1/movies/{movie_id}", 404, 12.3456, "id-1", "hit")
    direct, record = (orjson.loads(line) for line in stream.getvalue().splitlines())
    del direct["time"], record["time"]
    assert list(record.items()) == list(direct.items())


def test_the_access_line_reaches_another_handler_too(small_settings: Settings) -> None:
    """With a handler added beside ours (an operator's, a test's), lines go through
    logging, so that handler gets them as well."""
    configure_logging(replace(small_settings, log_format="json"), io.StringIO())
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    access = logging.getLogger("reelsearch.access")
    extra = Keep()
    access.addHandler(extra)
    try:
        AccessLineWriter(access).write("GET", "/health", 200, 0.001, "id-2", None)
    finally:
        access.removeHandler(extra)
    assert ["GET /health 200 1.0 ms"] == [record.getMessage() for record in seen]
