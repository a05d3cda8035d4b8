"""Log lines written in batches by a thread: order, wholeness, flushing, fork, the bound.

Each test writes through a real file descriptor (a pipe or a file), as the
server's stderr is, and reads back the exact bytes.
"""

from __future__ import annotations

import io
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.http import create_app
from reelsearch.observability import linewriter
from reelsearch.observability.linewriter import BatchedStreamHandler, has_descriptor
from reelsearch.observability.logging import AccessLineWriter, JsonFormatter, configure_logging


def wait_for_size(path: Path, size: int, seconds: float = 5.0) -> bytes:
    """The file's bytes once it holds ``size`` of them (or what it holds at the deadline)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and path.stat().st_size < size:
        time.sleep(0.01)
    return path.read_bytes()


def test_a_stream_with_a_descriptor_gets_the_batched_handler(
    small_settings: Settings, tmp_path: Path
) -> None:
    """The server's stderr (a file, a pipe) is written by the thread; an in-memory
    stream (a test's) keeps the plain handler, which writes each line at once."""
    settings = replace(small_settings, log_format="json")
    with open(tmp_path / "log", "w") as real:
        batched = configure_logging(settings, real)
        plain = configure_logging(settings, io.StringIO())
        kinds = (
            isinstance(batched, BatchedStreamHandler),
            isinstance(plain, BatchedStreamHandler),
            has_descriptor(real),
            has_descriptor(io.StringIO()),
        )
    assert kinds == (True, False, True, False)


def test_lines_arrive_whole_in_order_with_few_writes(tmp_path: Path) -> None:
    """Lines queued back to back reach the file in order, each whole, after the batch
    delay and without a flush, in far fewer writes than lines."""
    path = tmp_path / "log"
    with open(path, "w") as stream:
        handler = BatchedStreamHandler(stream, flush_seconds=0.05)
        writes = 0
        write = stream.write

        def counted(text: str) -> int:
            nonlocal writes
            writes += 1
            return write(text)

        stream.write = counted  # type: ignore[method-assign]
        expected = "".join(f"line {i}\n" for i in range(1000))
        for i in range(1000):
            handler.enqueue(f"line {i}\n")
        assert expected.encode() == wait_for_size(path, len(expected))
        handler.close()
    assert writes <= 5, writes


def test_flush_writes_what_is_pending_at_once(tmp_path: Path) -> None:
    """``flush()`` writes the queued lines in the caller's thread, before the batch
    delay is over (the app's shutdown relies on it)."""
    path = tmp_path / "log"
    with open(path, "w") as stream:
        handler = BatchedStreamHandler(stream, flush_seconds=30.0)
        handler.enqueue("first\n")
        handler.enqueue("second\n")
        handler.flush()
        written = path.read_bytes()
        handler.close()
    assert written == b"first\nsecond\n"


def test_records_and_direct_access_lines_share_one_queue(
    small_settings: Settings, tmp_path: Path
) -> None:
    """A log record and an access line written directly go through the same queue: the
    file has them in the order they were logged, each a JSON object."""
    path = tmp_path / "log"
    with open(path, "w") as stream:
        handler = configure_logging(replace(small_settings, log_format="json"), stream)
        logging.getLogger("reelsearch.ready").warning("before")
        AccessLineWriter(logging.getLogger("reelsearch.access")).write(
            "GET", "/health", 200, 0.001, "id-9", None
        )
        logging.getLogger("reelsearch.ready").warning("after")
        handler.flush()
        lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        configure_logging(replace(small_settings, log_format="json"), io.StringIO())
    assert [line["message"] for line in lines] == ["before", "GET /health 200 1.0 ms", "after"]
    assert isinstance(handler.formatter, JsonFormatter)


def test_a_stream_that_stops_taking_lines_bounds_the_queue(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """When the writer cannot keep up, the queue stops growing at its bound: the line
    that reaches it is written by the caller, with everything before it, in order."""
    monkeypatch.setattr(linewriter, "MAX_PENDING_LINES", 10)
    path = tmp_path / "log"
    with open(path, "w") as stream:
        handler = BatchedStreamHandler(stream, flush_seconds=30.0)  # the thread waits
        for i in range(11):
            handler.enqueue(f"{i}\n")
        written = path.read_bytes()
        pending = len(handler._pending)
        handler.close()
    assert (b"".join(b"%d\n" % i for i in range(10)), 1) == (written, pending)


def test_a_forked_child_starts_empty_and_writes_its_own_lines(tmp_path: Path) -> None:
    """A child forked with lines queued does not write the parent's lines again, and
    its own lines reach the stream (its writer thread is started anew)."""
    path = tmp_path / "log"
    with open(path, "w") as stream:
        handler = BatchedStreamHandler(stream, flush_seconds=30.0)
        handler.enqueue("parent\n")
        pid = os.fork()
        if pid == 0:  # the child: write one line through the batched path, then leave
            try:
                handler.flush_seconds = 0.01
                handler.enqueue("child\n")
                time.sleep(0.5)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        child_wrote = path.read_bytes()
        handler.flush()
        handler.close()
        both = path.read_bytes()
    assert (child_wrote, both) == (b"child\n", b"child\nparent\n")


def test_the_app_writes_its_queued_lines_when_it_stops(
    small_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's last lines are written at its shutdown (granian ends a worker by
    ``os._exit``, skipping logging's flush): with the writer waiting 30 s, the access
    line of the last request is in the file as soon as the app has stopped."""
    monkeypatch.setattr(linewriter, "FLUSH_SECONDS", 30.0)
    path = tmp_path / "stderr"
    with open(path, "w") as stream:
        monkeypatch.setattr("sys.stderr", stream)
        settings = replace(small_settings, log_format="json", access_log=True)
        with TestClient(create_app(settings)) as client:
            client.get("/health", headers={"X-Request-ID": "last-one"})
            queued = path.read_bytes()
        written = path.read_bytes()
        configure_logging(settings, io.StringIO())  # later tests' apps replace it anyway
    ids = [orjson.loads(line).get("request_id") for line in written.splitlines()]
    assert (queued, [i for i in ids if i is not None]) == (b"", ["last-one"])
