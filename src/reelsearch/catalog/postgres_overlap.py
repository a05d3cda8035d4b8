"""Server work on the import's connection while Python goes on with its own part.

The PostgreSQL import alternates between Python (reading and normalizing the
dumps, building the word index) and the server (ranking, index builds), one
waiting for the other on a single connection. Some of these steps do not
depend on each other: the ranking needs the movies but not the alternate
titles Python is still reading; the index builds and the word index both
only read the finished staging tables. ``Overlap`` runs the server's step in
a thread (which waits on the socket, so it holds the GIL for microseconds)
while the caller's thread does its Python step, one step per core.

The connection is used by one step at a time: the caller must not touch it
between ``Overlap(...)`` and ``join()`` (psycopg's connection lock would make
it wait, not break, but the point would be lost).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import psycopg

T = TypeVar("T")


class Overlap(Generic[T]):
    """``work(conn)`` running in a thread; ``join()`` returns its result or raises its error."""

    def __init__(self, conn: psycopg.Connection[Any], work: Callable[[psycopg.Connection[Any]], T]):
        self._conn = conn
        self._work = work
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="reelsearch-import-server")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._work(self._conn)
        except BaseException as exc:  # re-raised in the caller's thread by join()
            self._error = exc

    def join(self) -> T:
        """Wait for the server's step; its exception, if any, is raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set when no error

    def cancel(self) -> None:
        """Stop the server's step (the caller's step failed): the transaction is lost anyway.

        Cancels the running statement and waits for the thread, so the
        connection is free for the rollback that follows.
        """
        # A cancel that lands between two statements cancels nothing: ask again.
        while self._thread.is_alive():
            # A broken connection: the rollback will find out.
            with contextlib.suppress(psycopg.Error):
                self._conn.cancel()
            self._thread.join(0.2)
