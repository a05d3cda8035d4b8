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
longer (a statement moved to a thread, a slow PostgreSQL statement) is
watched from then on.

Time the search spends queued for a database connection does not count
(``Deadline.queue``/``resume``): nothing reads the deadline there, so a
disconnect could not stop it any sooner, and under load every PostgreSQL
search queues (16 requests on 2 workers x 2 connections) for longer than
``ARM_AFTER_SECONDS``. A watcher there (a task, two ``receive`` calls that
each cross to the server's I/O thread, a cancel) cost about 130 µs of CPU per
search (docs/decisions/0026). A search whose client left while it was queued
runs its first statement (about a millisecond) before the watch can stop it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

from reelsearch.search.deadline import Deadline

T = TypeVar("T")
# A client that goes away is noticed at most this late (plus the time the
# event loop is busy): far below any deadline a search may be given. It is
# SQLite's inline slice (search/sqlite.py): a search moved to a thread has run
# that long anyway. Under load a PostgreSQL search's own time (its statement
# waiting for a core) passed 5 ms for a quarter of searches, 20 ms for 7%
# (docs/decisions/0026).
ARM_AFTER_SECONDS = 0.02
# A timer may fire this much early by the clock (uvloop counts whole milliseconds
# from the time its loop iteration began): close enough, no timer more.
_EARLY_SECONDS = 0.001


async def unless_disconnected(
    receive: Receive, deadline: Deadline, work: Callable[[], Awaitable[T]]
) -> T:
    """``await work()``, cancelling ``deadline`` if the client disconnects meanwhile."""
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle  # set below, before any callback can run

    def start_timer() -> None:
        nonlocal timer
        timer = loop.call_later(ARM_AFTER_SECONDS, arm)

    def arm() -> None:
        nonlocal watcher, timer
        since = deadline.working_since
        if since == math.inf:  # queued for a connection: start over when it has one
            deadline.on_resume = start_timer
            return
        wait = since + ARM_AFTER_SECONDS - time.monotonic()
        if wait > _EARLY_SECONDS:  # it got its connection less than ARM_AFTER_SECONDS ago
            timer = loop.call_later(wait, arm)
            return
        # A bare asyncio task, not a task group: the search's own errors reach
        # the caller unwrapped.
        watcher = loop.create_task(_watch(receive, deadline))

    timer = loop.call_later(ARM_AFTER_SECONDS, arm)
    try:
        return await work()
    finally:
        timer.cancel()
        deadline.on_resume = None
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
