"""Stop a search whose client has gone away.

While a search runs, a second task listens on the ASGI receive channel;
``http.disconnect`` cancels the search's deadline, so the reader stops it at
its next statement (SQLite's progress handler interrupts one already
running). A GET has no body, so the only message left to receive is the
disconnect.

The listener starts only once the search has run ``ARM_AFTER_SECONDS``: a
search that runs on the event loop (SQLite's statements, inline) cannot be
told about a disconnect before it ends anyway, and most searches end within
a few milliseconds. Until then the watch costs one timer (about 1 µs, where
a task made and cancelled per search cost about 15 µs); a search that waits
longer (a statement moved to a thread, PostgreSQL) is watched from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

from reelsearch.search.deadline import Deadline

T = TypeVar("T")
# A client that goes away is noticed at most this late (plus the time the
# event loop is busy): far below any deadline a search may be given.
ARM_AFTER_SECONDS = 0.005


async def unless_disconnected(
    receive: Receive, deadline: Deadline, work: Callable[[], Awaitable[T]]
) -> T:
    """``await work()``, cancelling ``deadline`` if the client disconnects meanwhile."""
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None

    def arm() -> None:
        nonlocal watcher
        # A bare asyncio task, not a task group: the search's own errors reach
        # the caller unwrapped.
        watcher = loop.create_task(_watch(receive, deadline))

    timer = loop.call_later(ARM_AFTER_SECONDS, arm)
    try:
        return await work()
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()


async def _watch(receive: Receive, deadline: Deadline) -> None:
    body_done = False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            deadline.cancel()
            return
        if body_done:  # not the ASGI order (a test double?): nothing left to watch for
            return
        body_done = not message.get("more_body", False)
