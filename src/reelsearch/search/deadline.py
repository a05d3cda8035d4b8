"""The time a search may take, shared by every statement it runs.

A ``Deadline`` is made per request (``Settings.search_deadline_ms``) and
handed to the reader, which checks it before each statement and lets the
database stop a statement that runs past it: SQLite through a progress
handler, PostgreSQL through asyncpg's per-statement timeout (which cancels
the statement on the server). The HTTP layer cancels it when the client
disconnects, so an abandoned search stops at the next check instead of
running to its end.

It also tells the HTTP layer's disconnect watch (``http/disconnect.py``)
when the search's own work began: time queued for a database connection
does not count, since nothing reads the deadline there (``queue`` and
``resume``, called by the PostgreSQL engine around its checkout; the watch
may leave ``on_resume`` to be called when the search works again).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from reelsearch.errors import SearchCancelled, SearchTimedOut


class Deadline:
    """A point in (monotonic) time after which a search stops, or a cancellation."""

    __slots__ = ("expires_at", "is_cancelled", "on_resume", "seconds", "working_since")

    def __init__(self, seconds: float) -> None:
        now = time.monotonic()
        self.seconds = seconds
        self.expires_at = now + seconds
        self.is_cancelled = False
        # When the search last started working (monotonic); inf while it is queued.
        self.working_since = now
        # Called once by ``resume`` (then cleared): the disconnect watch's timer.
        self.on_resume: Callable[[], object] | None = None

    def queue(self) -> None:
        """The search now waits in a queue (for a database connection), doing nothing."""
        self.working_since = math.inf

    def resume(self) -> None:
        """The search works again (it has its connection)."""
        self.working_since = time.monotonic()
        on_resume, self.on_resume = self.on_resume, None
        if on_resume is not None:
            on_resume()

    def cancel(self) -> None:
        """Stop the search at its next check: its client went away."""
        self.is_cancelled = True

    def remaining(self) -> float:
        """Seconds left (0 when past it)."""
        return max(self.expires_at - time.monotonic(), 0.0)

    def is_over(self) -> bool:
        return self.is_cancelled or time.monotonic() >= self.expires_at

    def check(self) -> None:
        """Raise ``SearchCancelled`` or ``SearchTimedOut`` if the search must stop."""
        if self.is_cancelled:
            raise SearchCancelled("the client disconnected")
        if time.monotonic() >= self.expires_at:
            raise self.timed_out()

    def timed_out(self) -> SearchTimedOut:
        return SearchTimedOut(
            f"the search took longer than its deadline of {self.seconds * 1000:.0f} ms"
        )
