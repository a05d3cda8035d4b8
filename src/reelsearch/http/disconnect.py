"""Stop a search whose client has gone away.

While a search runs, a second task listens on the ASGI receive channel;
``http.disconnect`` cancels the search's deadline, so the reader stops it at
its next statement (SQLite's progress handler interrupts one already
running). A GET has no body, so the only message left to receive is the
disconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

from reelsearch.search.deadline import Deadline

T = TypeVar("T")


async def unless_disconnected(
    receive: Receive, deadline: Deadline, work: Callable[[], Awaitable[T]]
) -> T:
    """``await work()``, cancelling ``deadline`` if the client disconnects meanwhile."""

    async def watch() -> None:
        body_done = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                deadline.cancel()
                return
            if body_done:  # not the ASGI order (a test double?): nothing left to watch for
                return
            body_done = not message.get("more_body", False)

    # A bare asyncio task, not a task group: it costs a few microseconds per
    # search, and the search's own errors reach the caller unwrapped.
    watcher = asyncio.ensure_future(watch())
    try:
        return await work()
    finally:
        watcher.cancel()
