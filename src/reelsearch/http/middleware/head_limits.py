"""Bounds on a request's head that the app answers itself, in the API's JSON error shape.

granian (hyper inside it) refuses some requests before any app code runs, with a
bare status line: an empty body, no Content-Type, none of the app's headers. No
setting of granian 2.8 moves these, so they are granian's alone (a proxy in front
can rewrite them, e.g. nginx ``error_page``):

- a request target (path and query) of 65,535 bytes or more: 414 (the ``http``
  crate's URI length limit, ``GRANIAN_MAX_TARGET_BYTES`` + 1);
- more than 100 header lines: 431 (hyper's fixed ``MAX_HEADERS``);
- a request head larger than granian's HTTP/1 read buffer
  (``GRANIAN_HEAD_BUFFER_BYTES``, set by ``serving.serve``; a head that arrives in
  large reads may get a little past it before it is refused): 431;
- a request line or header that does not parse (no method, a space in a header
  name, a bad Content-Length): 400.

Below those, the app keeps tighter bounds of its own and answers them as every
other 4xx, with the security headers and the request id, before the gates or
the route spend anything on the request:

- a request target over ``MAX_TARGET_BYTES``: 414 ``too_long``;
- header names and values over ``MAX_HEADER_BYTES`` in all: 431 ``headers_too_large``.

Every request's cost stays bounded by granian's limits above; the app's make the
refusals a client can reach in practice readable as JSON.
"""

from __future__ import annotations

import orjson
from starlette.types import Scope, Send

# Far above any real URL (a search's is well under 200 bytes; browsers and proxies
# commonly stop near 8 KiB): a longer one is a mistake or an attack.
MAX_TARGET_BYTES = 8 * 1024
# nginx's default for a whole head (4 buffers of 8 KiB): room for large cookies and
# tokens, far under granian's read buffer.
MAX_HEADER_BYTES = 32 * 1024
# The longest request target granian passes on: the http crate's ``MAX_LEN``
# (u16::MAX - 1); from 65,535 bytes granian answers 414 itself.
GRANIAN_MAX_TARGET_BYTES = 65_534
# Header lines hyper parses at most (a fixed array); one more is granian's 431.
GRANIAN_MAX_HEADERS = 100
# granian's HTTP/1 read buffer (HTTP1Settings.max_buffer_size, its default): the most a
# request head may take before granian answers 431 itself; ``serve`` sets it.
GRANIAN_HEAD_BUFFER_BYTES = 8192 + 4096 * 100


def target_bytes(scope: Scope) -> int:
    """The length of the request target as sent: the raw path, "?" and the query string."""
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope["query_string"]
    return len(path) + (len(query) + 1 if query else 0)


def header_bytes(scope: Scope) -> int:
    """The header names and values of the request, in bytes (separators not counted)."""
    size = 0
    for name, value in scope["headers"]:
        size += len(name) + len(value)
    return size


def head_refusal(scope: Scope) -> tuple[int, bytes] | None:
    """The status and JSON body refusing a request over the app's head bounds (414 or
    431), or None for one within them (every request: no coroutine, two sums)."""
    target = target_bytes(scope)
    if target > MAX_TARGET_BYTES:
        message = (f"the request target (path and query string) is {target} bytes; "
                   f"the limit is {MAX_TARGET_BYTES}")  # fmt: skip
        return 414, _error_body(code="too_long", message=message)
    headers = header_bytes(scope)
    if headers > MAX_HEADER_BYTES:
        message = (f"the request's header fields are {headers} bytes (names and values); "
                   f"the limit is {MAX_HEADER_BYTES}")  # fmt: skip
        return 431, _error_body(code="headers_too_large", message=message)
    return None


async def send_refusal(send: Send, refusal: tuple[int, bytes]) -> None:
    """Send what ``head_refusal`` returned."""
    status, body = refusal
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(*, code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "param": None}})
