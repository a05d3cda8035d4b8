"""A request's head through the real server: where the app answers an oversized or broken
head in its JSON error shape, and the refusals only granian makes (documented in
http/middleware/head_limits.py and the README), which reach no app code.

One ``reelsearch serve`` (granian, 1 worker) on the small catalog; raw sockets, so each
request is sent exactly as written.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from live_server import LiveServer, live_server

from reelsearch.http.middleware.head_limits import GRANIAN_MAX_HEADERS, GRANIAN_MAX_TARGET_BYTES


@pytest.fixture(scope="module")
def server(small_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("head-limits") / "serve.log"
    with live_server(f"sqlite:///{small_db}", log) as running:
        yield running


def exchange(server: LiveServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` on a new connection; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def get(target: bytes, *header_lines: bytes) -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n" % (
        target, b"".join(line + b"\r\n" for line in header_lines)
    )  # fmt: skip


def test_a_long_target_is_the_apps_json_414_up_to_granians_limit(server: LiveServer) -> None:
    """A target of 8,193 bytes up to granian's 65,534 is the app's JSON 414 with the
    security headers; from 65,535 bytes granian answers 414 itself: no body, no
    Content-Type, none of the app's headers (the app never sees the request)."""
    for size in (8193, GRANIAN_MAX_TARGET_BYTES):
        status, headers, body = exchange(server, get(b"/health?" + b"a" * (size - 8)))
        assert (414, "application/json", "reelsearch") == (
            status, headers["content-type"], headers["server"]
        )  # fmt: skip
        assert {"code": "too_long", "param": None,
                "message": f"the request target (path and query string) is {size} bytes; "
                           "the limit is 8192"} == orjson.loads(body)["error"]  # fmt: skip
    status, headers, body = exchange(server, get(b"/health?" + b"a" * GRANIAN_MAX_TARGET_BYTES))
    assert (414, b"", "0", None) == (
        status, body, headers["content-length"], headers.get("content-type")
    )  # fmt: skip


def test_large_header_fields_are_the_apps_json_431(server: LiveServer) -> None:
    """100 KiB of header fields (over the app's 32 KiB, under granian's read buffer) is the
    app's JSON 431 headers_too_large, through granian."""
    status, headers, body = exchange(
        server, get(b"/v1/search?q=alien", b"X-Fill: " + b"a" * 102_400)
    )
    assert (431, "application/json") == (status, headers["content-type"])
    assert "headers_too_large" == orjson.loads(body)["error"]["code"]


def test_too_many_header_lines_are_granians_431(server: LiveServer) -> None:
    """100 header lines are served; 101 are refused by granian (hyper's fixed maximum) with
    a bodiless 431 the app never sees."""

    def lines(count: int) -> list[bytes]:  # Host and Connection are two of them
        return [b"X-%d: a" % n for n in range(count - 2)]

    status, headers, _ = exchange(server, get(b"/health", *lines(GRANIAN_MAX_HEADERS)))
    assert (200, "application/json") == (status, headers["content-type"])
    status, headers, body = exchange(server, get(b"/health", *lines(GRANIAN_MAX_HEADERS + 1)))
    assert (431, b"", None) == (status, body, headers.get("content-type"))


@pytest.mark.parametrize(
    "request_bytes",
    [b"GARBAGE\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
     b"GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n"],
)  # fmt: skip
def test_a_malformed_head_is_granians_400(server: LiveServer, request_bytes: bytes) -> None:
    """A request line or header that does not parse is refused by granian with a bodiless
    400 the app never sees."""
    status, headers, body = exchange(server, request_bytes)
    assert (400, b"", None) == (status, body, headers.get("content-type"))
