"""A tiny ASGI app for the serving tests: /slow?s=SECONDS answers after that long;
/frozen says what the worker inherited frozen from the process that forked it."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any


def app() -> Any:
    """The factory granian calls in each worker."""
    from reelsearch.serving import serve

    # Read before this worker runs anything of its own: the objects frozen in the
    # parent, and whether the parent's ``serve`` (tracked, as every function) is
    # still in a generation a collection walks.
    frozen = json.dumps(
        {"frozen": gc.get_freeze_count(), "serve_walked": any(o is serve for o in gc.get_objects())}
    ).encode()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/frozen":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": frozen})
            return
        seconds = float(scope["query_string"].decode().partition("=")[2] or 0)
        await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return slow
