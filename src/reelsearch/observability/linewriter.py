"""Log lines written in batches by a thread of their own, never by the event loop.

A worker used to write each access line with its own ``write`` system call,
on the event loop, to the stream every worker shares (the server's stderr).
That cost the loop about 7 µs of CPU per request, released and retook the
interpreter lock once per request, and made one worker wait for the other:
a write to a file takes the shared file position's lock, so a worker whose
peer was descheduled in the middle of its write slept in the kernel until
the peer ran again (bench/RESULTS.md, "Worker pauses", issue 12).

``BatchedStreamHandler`` is the standard ``StreamHandler`` with its writes
moved: ``emit`` (and ``AccessLineWriter``'s direct path) appends the finished
line to a deque, and a writer thread, woken by the first line of a batch,
waits ``FLUSH_SECONDS`` for the rest and writes them with one call (the
system call releases the interpreter lock, so the loop runs meanwhile).
Lines keep their order and each reaches the stream whole. ``flush()`` writes
what is pending at once, in the caller's thread: logging's shutdown, the
app's lifespan end and tests call it. If the stream stops taking lines (a
full pipe nobody reads) the deque grows to ``MAX_PENDING_LINES`` and then
the caller writes, and waits, itself, as every line did before: nothing is
dropped and the memory stays bounded.

What is lost in a crash is what the last ``FLUSH_SECONDS`` logged: a worker
killed by SIGKILL, or one whose process ends by ``os._exit`` without the
app's shutdown (the lifespan end flushes).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import TextIO

# How long the writer waits after the first line of a batch for more: the delay
# before a line is on the stream, and, at 30,000 lines a second, ~1,500 lines a write.
FLUSH_SECONDS = 0.05
# Past this many pending lines (~16 MB of access lines) the caller writes itself.
MAX_PENDING_LINES = 65_536

_handlers: weakref.WeakSet[BatchedStreamHandler] = weakref.WeakSet()


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` whose lines a writer thread writes, a batch per system call."""

    def __init__(self, stream: TextIO, flush_seconds: float | None = None) -> None:
        super().__init__(stream)
        self.flush_seconds = FLUSH_SECONDS if flush_seconds is None else flush_seconds
        self._reset()
        _handlers.add(self)

    def _reset(self) -> None:
        self._pending: deque[str] = deque()
        self._wake = threading.Event()
        self._scheduled = False  # a batch is being collected: the writer is awake
        self._write_lock = threading.Lock()  # one writer at a time keeps batches in order
        self._thread: threading.Thread | None = None
        self._closed = False

    def enqueue(self, line: str) -> None:
        """Queue one finished line (its newline included) for the writer thread."""
        pending = self._pending
        pending.append(line)
        if not self._scheduled:
            self._scheduled = True
            if self._thread is None:
                self._start()
            self._wake.set()
        elif len(pending) >= MAX_PENDING_LINES:
            self.flush()  # the stream is not keeping up: wait for it here, as before

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.enqueue(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write every pending line now, in this thread."""
        with self._write_lock:
            self._write_pending()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        super().close()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reelsearch-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            time.sleep(self.flush_seconds)
            # Cleared before the drain: a line queued from here on schedules the next batch.
            self._scheduled = False
            with self._write_lock:
                self._write_pending()

    def _write_pending(self) -> None:
        pending = self._pending
        lines = []
        try:
            while True:
                lines.append(pending.popleft())
        except IndexError:
            pass
        if not lines:
            return
        text = "".join(lines)
        try:
            stream = self.stream
            stream.write(text)
            stream.flush()
        except Exception:  # as Handler.emit does: a broken stream must not fail anyone
            self.handleError(logging.makeLogRecord({"msg": text}))


def flush_all() -> None:
    """Write what every batched handler holds (the app's shutdown calls it)."""
    for handler in list(_handlers):
        handler.flush()


def has_descriptor(stream: TextIO) -> bool:
    """Whether ``stream`` writes to an operating-system file (a file, pipe or terminal),
    which is where a write can block; an in-memory stream (a test's) cannot."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _after_fork_in_child() -> None:
    # The parent writes what it had queued; the child starts empty, with no thread.
    for handler in list(_handlers):
        handler._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
