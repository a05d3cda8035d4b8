"""Access lines with the request id, the slow-request log with its plans, and profile=1.

The app runs in process (TestClient) with JSON logs written to the captured
stderr, so each test reads the exact lines an operator would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.http import create_app

TOKEN = "observe-admin-token-" * 2


def logged(capsys: pytest.CaptureFixture[str], logger: str) -> list[dict[str, Any]]:
    lines = [
        orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    return [line for line in lines if line["logger"] == logger]


@pytest.fixture
def app_client(small_settings: Settings) -> Iterator[Any]:
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        settings = replace(small_settings, log_format="json", **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def test_request_id_flows_from_header_to_log_line(
    app_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A well-formed X-Request-ID is kept: returned, and in the request's access line with
    the method, route template, status and duration."""
    client = app_client()
    capsys.readouterr()
    response = client.get("/v1/movies/1", headers={"X-Request-ID": "trace-42.a:b"})
    [line] = logged(capsys, "reelsearch.access")
    assert (response.headers["x-request-id"], line["request_id"]) == (
        "trace-42.a:b",
        "trace-42.a:b",
    )
    assert {k: line[k] for k in ("method", "route", "status")} == {
        "method": "GET",
        "route": "/v1/movies/{movie_id}",
        "status": 200,
    }
    assert 0 < line["duration_ms"] < 10_000


def test_malformed_request_id_is_replaced(
    app_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An id that could forge log text (spaces, quotes, too long) is replaced by a new one,
    the same in the response and the log line."""
    client = app_client()
    capsys.readouterr()
    for given in ['x" injected="1', "a" * 65]:
        response = client.get("/health", headers={"X-Request-ID": given})
        [line] = logged(capsys, "reelsearch.access")
        new = response.headers["x-request-id"]
        assert (16, True, new) == (
            len(new),
            all(c in "0123456789abcdef" for c in new),
            line["request_id"],
        )


def slow_lines(client: Any, capsys: pytest.CaptureFixture[str], request_id: str) -> list[Any]:
    """The slow log's lines of ``request_id``, once its plans are in (within 5 s)."""
    deadline = time.monotonic() + 5
    lines: list[dict[str, Any]] = []
    while not lines and time.monotonic() < deadline:
        time.sleep(0.05)
        client.get("/health")  # lets the plan task run
        lines = [
            line for line in logged(capsys, "reelsearch.slow") if line["request_id"] == request_id
        ]
    return lines


def test_slow_request_is_logged_with_stages_and_plan(
    app_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past the threshold, a search is logged once with its parameters, the time of each
    stage and, for every statement the engine sent, the plan SQLite chose."""
    client = app_client(slow_request_ms=0.001, access_log=False)
    capsys.readouterr()
    # A year among the words, so the text match is a statement (without one the
    # catalog's postings answer it, filters too: search/rank_sets.py).
    params = {"q": "matrix 1999", "limit": "2"}
    client.get("/v1/search", params=params, headers={"X-Request-ID": "slow-1"})
    [line] = slow_lines(client, capsys, "slow-1")
    assert (line["params"], line["route"], line["status"]) == (
        params,
        "/v1/search",
        200,
    )
    # The engine reports its own stages; through the result cache, encoding and
    # compressing the body are part of "engine" (the stored answer is made once,
    # with its encodings).
    assert list(line["stages_ms"]) == ["parse", "plan", "database", "ranking", "engine"]
    assert line["plans"], line
    for plan in line["plans"]:
        assert plan["sql"].startswith("SELECT") and plan["plan"], plan
    # The text search goes through the FTS index and reads movies by their rank index.
    assert any("title_fts" in step for plan in line["plans"] for step in plan["plan"])
    assert [
        step
        for plan in line["plans"]
        for step in plan["plan"]
        if step.strip() in ("SCAN movies", "SCAN m")
    ] == []


def test_slow_request_past_the_default_word_limit_is_logged_with_its_plan(
    app_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under a word limit raised past the default (32), a slow search of more words than
    the default is logged with the plans of its statements, parsed with the deployment's
    limits as the route parsed it."""
    client = app_client(slow_request_ms=0.001, access_log=False, max_query_words=40)
    capsys.readouterr()
    params = {"q": " ".join(["matrix"] * 32 + ["1999"]), "limit": "2"}
    assert (
        client.get("/v1/search", params=params, headers={"X-Request-ID": "slow-33"}).status_code
        == 200
    )
    [line] = slow_lines(client, capsys, "slow-33")
    assert line["plans"], line
    assert all(plan["sql"].startswith("SELECT") and plan["plan"] for plan in line["plans"])


def test_fast_request_is_not_in_the_slow_log(
    app_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under the threshold, nothing is written to the slow log."""
    client = app_client(slow_request_ms=60_000)
    capsys.readouterr()
    client.get("/v1/search", params={"q": "matrix"})
    assert logged(capsys, "reelsearch.slow") == []


def test_profile_of_one_request_for_the_admin(app_client: Any) -> None:
    """profile=1 with the admin token returns the request's HTML profile and the status
    the request had; the parameter is not passed on to the route."""
    client = app_client(admin_token=TOKEN)
    response = client.get(
        "/v1/search",
        params={"q": "matrix", "profile": "1"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert (
        response.status_code,
        response.headers["content-type"],
        response.headers["x-profiled-status"],
    ) == (200, "text/html; charset=utf-8", "200")
    assert "pyinstrument" in response.text.lower()


def test_profile_without_the_token_is_refused_and_logged(
    app_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the right token profile=1 is a 403 JSON error, and the refusal is logged."""
    client = app_client(admin_token=TOKEN)
    capsys.readouterr()
    response = client.get(
        "/v1/search",
        params={"q": "matrix", "profile": "1"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert (
        response.status_code,
        response.json()["error"]["code"],
        response.json()["error"]["param"],
    ) == (403, "forbidden", "profile")
    [line] = logged(capsys, "reelsearch.admin")
    assert "refused admin call" in line["message"]


async def test_a_plan_still_being_read_is_stopped_before_the_engine_closes() -> None:
    """``SlowRequestLog.finish`` (the app's shutdown, before the engine closes) cancels a
    plan read still under way and waits for it, so the block holding a pool connection
    runs its exit (the connection goes back) instead of being left pending with the loop;
    with nothing under way it returns at once."""
    import asyncio

    from reelsearch.observability.slowlog import SlowRequestLog

    slow_log = SlowRequestLog(threshold_ms=1)
    exits: list[str] = []

    async def replay() -> list[dict[str, Any]]:
        try:
            await asyncio.Event().wait()  # an EXPLAIN that has not answered yet
        finally:
            exits.append("connection given back")
        return []

    scope = {"method": "GET", "query_string": b"q=x"}
    slow_log._replay_for = lambda route, scope: replay  # type: ignore[method-assign]
    slow_log.record(scope, "/v1/search", 200, 1.0, {}, "rid")  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the plan read has started
    assert exits == []
    await slow_log.finish()
    assert exits == ["connection given back"]
    await slow_log.finish()  # nothing under way: a no-op
    assert exits == ["connection given back"]
