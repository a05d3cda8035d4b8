"""Profiles under pyinstrument, a sampling profiler: one request, or a whole workload.

- ``profile=1`` on any request, with ``Authorization: Bearer
  <REELSEARCH_ADMIN_TOKEN>``, answers with the HTML profile of that request
  instead of its body (the status it had is in ``X-Profiled-Status``);
  without the token it is a 403, logged once per refused call.
- ``profile_workload`` (``reelsearch profile``) runs a list of requests
  through the app in this process, under one profiler, and writes the
  HTML report: the whole HTTP path (routing, parsing, engine, encoding)
  without a network or a load generator in the picture.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelsearch.config import Settings

logger = logging.getLogger("reelsearch.admin")

# 0.1 ms: a search takes a few ms, the default 1 ms would see a handful of samples.
REQUEST_INTERVAL = 0.0001


def _wants_profile(query_string: bytes) -> tuple[bool, bytes]:
    """Whether ``profile=1`` is asked for, and the query string without it."""
    if b"profile=" not in query_string:
        return False, query_string
    pairs = parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True)
    asked = ("profile", "1") in pairs
    rest = [(k, v) for k, v in pairs if k != "profile"]
    return asked, urlencode(rest).encode()


def is_admin(scope: Scope, token: str) -> bool:
    """True if the request carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    if not token:
        return False
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, given = value.decode("latin-1").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(
                given.encode(), token.encode()
            )
    return False


class ProfiledRequests:
    """Answers ``profile=1`` requests from an admin with the request's profile."""

    def __init__(self, app: ASGIApp, *, admin_token: str) -> None:
        self.app = app
        self.admin_token = admin_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or b"profile=" not in scope["query_string"]:
            await self.app(scope, receive, send)
            return
        asked, rest = _wants_profile(scope["query_string"])
        scope = {**scope, "query_string": rest}
        if not asked:
            await self.app(scope, receive, send)
            return
        if not is_admin(scope, self.admin_token):
            logger.warning(
                "refused admin call: profile=1 without the admin token",
                extra={"fields": {"path": scope["path"], "client": _client(scope)}},
            )
            why = "needs the admin token" if self.admin_token else "needs an admin token set"
            body = orjson.dumps({"error": {"code": "forbidden", "message": f"profile=1 {why}",
                                           "param": "profile"}})  # fmt: skip
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        status = 0

        async def discard(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        # Imported at the first profiled request: a worker that is never asked for a
        # profile does not hold pyinstrument (its modules are memory in every worker).
        from pyinstrument import Profiler

        profiler = Profiler(interval=REQUEST_INTERVAL, async_mode="enabled")
        profiler.start()
        try:
            await self.app(scope, receive, discard)
        finally:
            profiler.stop()
        body = profiler.output_html().encode()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"x-profiled-status", str(status).encode()),
            (b"cache-control", b"no-store"),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


async def send_get(app: ASGIApp, target: str) -> int:
    """Send one GET through the app in process; the status it answered."""
    path, _, query = target.partition("?")
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": [(b"host", b"profile")],
        "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0), "state": {},
    }  # fmt: skip
    status = 0
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def profile_workload(
    settings: Settings, targets: Sequence[str], out: Path, *, interval: float = 0.0005
) -> dict[str, Any]:
    """Run ``targets`` (paths with query strings) through the app under the profiler.

    Writes the HTML report to ``out`` and returns what ran: requests, seconds,
    requests per status. The app's lifespan (engine open, snapshot load) runs
    before the profiler starts, so the report shows requests only.
    """
    from reelsearch.http.app import create_app

    app = create_app(settings)
    statuses: dict[str, int] = {}
    from pyinstrument import Profiler

    profiler = Profiler(interval=interval, async_mode="disabled")

    async def run() -> float:
        async with app.router.lifespan_context(app):
            started = time.perf_counter()
            profiler.start()
            try:
                for target in targets:
                    status = str(await send_get(app, target))
                    statuses[status] = statuses.get(status, 0) + 1
            finally:
                profiler.stop()
            return time.perf_counter() - started

    seconds = asyncio.run(run())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_html())
    # The same call tree as text, for a terminal or a results file.
    text = out.with_suffix(".txt")
    text.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    return {"requests": len(targets), "seconds": round(seconds, 3), "statuses": statuses,
            "report": str(out), "text": str(text)}  # fmt: skip


def builtin_workload(settings: Settings, titles: int = 200) -> list[str]:
    """A mix like people's: exact titles, prefixes as typed, a typo, filters with facets,
    autocomplete and movie details, from the catalog's ``titles`` most popular movies."""
    popular = popular_movies(settings, titles)
    mix: list[str] = []
    for movie_id, title in popular:
        words = title.split()
        first = words[0]
        mix.append("/v1/search?" + urlencode({"q": title}))
        if len(words) > 1:
            mix.append("/v1/search?" + urlencode({"q": f"{first} {words[1][:3]}"}))
        if len(first) >= 5:
            typo = first[0] + first[2] + first[1] + first[3:]  # two letters swapped
            mix.append("/v1/search?" + urlencode({"q": typo}))
        mix.append("/v1/autocomplete?" + urlencode({"q": title[:4]}))
        mix.append("/v1/search?" + urlencode(
            {"q": first, "year_from": "1980", "genres": "Drama,Comedy",
             "facets": "genres,decade"}))  # fmt: skip
        mix.append(f"/v1/movies/{movie_id}")
    return mix


def popular_movies(settings: Settings, limit: int) -> list[tuple[int, str]]:
    """The catalog's ``limit`` most popular movies (id, title)."""
    sql = f"SELECT id, title FROM movies ORDER BY search_rank LIMIT {int(limit)}"
    if settings.backend == "postgresql":
        import psycopg

        with psycopg.connect(settings.postgres_dsn) as pg:
            return [(int(r[0]), str(r[1])) for r in pg.execute(sql).fetchall()]
    conn = sqlite3.connect(f"file:{Path(settings.sqlite_path).resolve()}?mode=ro", uri=True)
    try:
        return [(int(r[0]), str(r[1])) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()
