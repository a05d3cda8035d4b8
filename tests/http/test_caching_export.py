"""The streaming export holds one page at a time: a stalled reader stops the reads, and
exporting the whole sample catalog never holds more than a small, fixed amount of memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from dataclasses import replace
from typing import Any

from reelsearch.config import Settings
from reelsearch.http.app import create_app


def _scope(query_string: bytes, accept: bytes = b"identity") -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/v1/search/export", "raw_path": b"/v1/search/export",
        "query_string": query_string, "root_path": "", "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234), "headers": [(b"accept-encoding", accept)],
    }  # fmt: skip


async def _receive() -> dict[str, Any]:
    await asyncio.sleep(3600)  # the client never disconnects during the test
    return {"type": "http.disconnect"}


async def test_export_waits_for_a_slow_reader(sample_settings: Settings) -> None:
    """While the reader takes nothing, no further page is read from the catalog; pages
    double from 100 hits to 500, so the whole catalog is 120 reads, not 588."""
    app = create_app(replace(sample_settings, cache="off"))
    async with app.router.lifespan_context(app):
        engine = app.state.engine
        original, pages = engine.search, []

        async def counted(query: Any) -> Any:
            pages.append((query.offset, query.limit))
            return await original(query)

        engine.search = counted
        release = asyncio.Event()
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                chunks.append(message["body"])
                if len(chunks) == 2:
                    await release.wait()  # the reader stalls after two pages

        task = asyncio.ensure_future(app(_scope(b"q="), _receive, send))
        await asyncio.sleep(0.5)
        assert pages[:2] == [(0, 100), (100, 200)] and len(pages) <= 3  # one page ahead
        release.set()
        await asyncio.wait_for(task, 120)
    # every one of the 58,788 movies: 100, 200, 400, then 500 a page
    assert [(0, 100), (100, 200), (300, 400)] + [
        (offset, 500) for offset in range(700, 58_788, 500)
    ] == pages
    assert len(pages) == 120
    assert sum(chunk.count(b"\n") for chunk in chunks) == 58_788


async def test_export_memory_stays_bounded(sample_settings: Settings) -> None:
    """Exporting all 58,788 movies peaks at a few MB of Python memory,
    far below the size of the export itself."""
    app = create_app(replace(sample_settings, cache="off"))
    async with app.router.lifespan_context(app):
        sent = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal sent
            sent += len(message.get("body", b""))

        tracemalloc.start()
        try:
            await app(_scope(b"q=", b"identity"), _receive, send)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert sent > 8_000_000  # the export is several MB
    assert peak < sent / 4
