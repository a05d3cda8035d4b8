"""A tiny ASGI app for the shutdown tests: /slow?s=SECONDS answers after that long."""

from __future__ import annotations

import asyncio
from typing import Any


def app() -> Any:
    """The factory granian calls in each worker."""

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        seconds = float(scope["query_string"].decode().partition("=")[2] or 0)
        await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return slow
