"""Security headers on every response, set once at startup and added per response.

A plain ASGI middleware (not BaseHTTPMiddleware): it only rewrites the
``http.response.start`` message, so streamed bodies stay streamed and the
cost is one list extension per response.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What every response carries unless the route set the header itself (an HTML
# page may send its own Referrer-Policy; its CSP is the page's business).
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # Browsers must not guess a type: a JSON body is never run as a script.
    (b"x-content-type-options", b"nosniff"),
    # An API URL holds the search typed; it must not leak to other sites.
    (b"referrer-policy", b"no-referrer"),
    # Nothing here is meant to be framed by another site (clickjacking).
    (b"x-frame-options", b"DENY"),
    # granian sends "server: granian" unless the app names itself; no version either way.
    (b"server", b"reelsearch"),
)
SECURITY_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """Add ``SECURITY_HEADERS`` to each HTTP response that does not set them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus each security header they do not already name."""
    present = {name.lower() for name, _ in headers} & SECURITY_NAMES
    if present:
        headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
    else:
        headers.extend(SECURITY_HEADERS)
    return headers
