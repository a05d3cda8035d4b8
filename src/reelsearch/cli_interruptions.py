"""What a command does when it is cut off: its reader goes away, or it is told to stop.

``reelsearch import ... 2>&1 | head -1`` closes the pipe after one line;
the next progress line then raised BrokenPipeError in the middle of the
import, which rolled back a job that had nothing wrong with it (or, after
COMMIT, printed a traceback for an import that had succeeded). What a
command prints is for whoever reads it; once nobody does, the command
carries on, quietly, and ends as its work ends.

:class:`QuietWhenUnread` wraps a text stream: the first write or flush that
fails with an OSError (EPIPE from a closed pipe, EIO from a lost terminal)
turns it quiet for good, and the file descriptor is pointed at the null
device so that the interpreter's own last flush at exit finds nothing to
complain about.

:func:`interrupted_by_sigterm` makes SIGTERM (``kill``, a service manager, a
container stopping) end an import as Ctrl-C does: rolled back, and said so
(``cli.main``), where Python's default would end the process mid-statement,
leaving the database to notice the lost transaction on its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any, TextIO


class QuietWhenUnread:
    """``stream``, except that once a write fails (the reader went away) it drops everything."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.is_quiet = False

    def write(self, text: str) -> int:
        if not self.is_quiet:
            try:
                return self.stream.write(text)
            except OSError:
                self._go_quiet()
        return len(text)

    def flush(self) -> None:
        if not self.is_quiet:
            try:
                self.stream.flush()
            except OSError:
                self._go_quiet()

    def isatty(self) -> bool:
        return not self.is_quiet and self.stream.isatty()

    def __getattr__(self, name: str) -> Any:  # fileno, encoding...: as the stream has them
        return getattr(self.stream, name)

    def _go_quiet(self) -> None:
        self.is_quiet = True
        try:
            descriptor = self.stream.fileno()
        except (OSError, ValueError, AttributeError):  # not a file (StringIO), or closed
            return
        # What is still buffered in the stream goes to the null device when flushed.
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)


def quiet_when_unread(stream: TextIO) -> TextIO:
    """``stream`` wrapped in :class:`QuietWhenUnread` (typed as the stream it stands for)."""
    return QuietWhenUnread(stream)  # type: ignore[return-value]  # a TextIO by duck typing


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the import rolls back (psycopg cancels the running
    statement on a KeyboardInterrupt) and says so, instead of dying mid-statement."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.signal = number


@contextlib.contextmanager
def interrupted_by_sigterm(wanted: bool) -> Iterator[None]:
    """While a long command runs, SIGTERM raises :class:`Terminated` (off the main thread,
    or not ``wanted``: the default, which ends the process at once)."""
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(number: int, frame: object) -> None:
        raise Terminated(number)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
