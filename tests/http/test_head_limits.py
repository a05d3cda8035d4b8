"""Bounds on a request's head: a target over 8 KiB is a JSON 414, header fields over
32 KiB a JSON 431, answered by the app with its error shape before anything else runs.

In process here; tests/http/test_head_limits_server.py sends them through granian, and
shows which refusals only granian can make.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.http.middleware.head_limits import (
    GRANIAN_HEAD_BUFFER_BYTES,
    GRANIAN_MAX_TARGET_BYTES,
    MAX_HEADER_BYTES,
    MAX_TARGET_BYTES,
)

Client = Any
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "server": "reelsearch"}
# The header fields TestClient sends on its own, names and values:
# host: testserver, accept: */*, accept-encoding: gzip, deflate, br, zstd,
# connection: keep-alive, user-agent: testclient.
CLIENT_HEADER_BYTES = 4 + 10 + 6 + 3 + 15 + 23 + 10 + 10 + 10 + 10


@pytest.fixture(scope="module")
def client(small_settings: Settings) -> Iterator[Client]:
    with TestClient(create_app(small_settings), raise_server_exceptions=False) as test_client:
        yield test_client


def padded_target(base: str, size: int) -> str:
    """``base`` plus a ``pad`` parameter making a request target of ``size`` bytes."""
    return base + "&pad=" + "a" * (size - len(base) - len("&pad="))


def test_the_app_bounds_sit_under_granians() -> None:
    """What the app refuses as JSON is refused before granian's own limits are reached,
    so a request between the two is answered in the API's error shape."""
    assert MAX_TARGET_BYTES < GRANIAN_MAX_TARGET_BYTES
    assert MAX_TARGET_BYTES + MAX_HEADER_BYTES < GRANIAN_HEAD_BUFFER_BYTES


@pytest.mark.parametrize("base", ["/v1/search?q=star", "/health?x=1", "/v1/movies/1?x=1", "/?q=a"])
def test_a_target_over_the_limit_is_a_json_414(client: Client, base: str) -> None:
    """A request target (path, "?" and query string) of 8,193 bytes is refused on every
    path with a 414 too_long naming the size and the limit, with the security headers;
    one of 8,192 bytes is served as usual."""
    response = client.get(
        padded_target(base, MAX_TARGET_BYTES + 1), headers={"X-Request-ID": "l-1"}
    )
    expected = {"error": {
        "code": "too_long",
        "message": "the request target (path and query string) is 8193 bytes; the limit is 8192",
        "param": None,
    }}  # fmt: skip
    assert (414, "application/json", expected) == (
        response.status_code, response.headers["content-type"], response.json()
    )  # fmt: skip
    assert SECURITY == {name: response.headers[name] for name in SECURITY}
    assert "l-1" == response.headers["x-request-id"]
    at_limit = client.get(padded_target(base, MAX_TARGET_BYTES))
    assert at_limit.status_code != 414


def test_a_long_path_counts_as_the_target(client: Client) -> None:
    """The path counts as sent (escapes undecoded): 8,193 bytes of it is a 414 too."""
    response = client.get("/v1/" + "%41" * ((MAX_TARGET_BYTES - 4) // 3) + "bb")
    assert (414, "too_long") == (response.status_code, response.json()["error"]["code"])


@pytest.mark.parametrize("path", ["/v1/search?q=star", "/health"])
def test_header_fields_over_the_limit_are_a_json_431(client: Client, path: str) -> None:
    """Header names and values over 32 KiB in all are a 431 headers_too_large naming the
    size and the limit, one large header or many; exactly 32 KiB is served as usual."""
    fill = MAX_HEADER_BYTES - CLIENT_HEADER_BYTES - len("x-fill")
    at_limit = client.get(path, headers={"X-Fill": "a" * fill})
    assert 200 == at_limit.status_code
    for headers in ({"X-Fill": "a" * (fill + 1)},
                    {f"X-Fill-{n:02}": "a" * (fill // 20) for n in range(21)}):  # fmt: skip
        response = client.get(path, headers=headers)
        size = CLIENT_HEADER_BYTES + sum(len(name) + len(value) for name, value in headers.items())
        expected = {"error": {
            "code": "headers_too_large",
            "message": f"the request's header fields are {size} bytes (names and values); "
                       "the limit is 32768",
            "param": None,
        }}  # fmt: skip
        assert (431, "application/json", expected) == (
            response.status_code, response.headers["content-type"], response.json()
        )  # fmt: skip
        assert SECURITY == {name: response.headers[name] for name in SECURITY}
