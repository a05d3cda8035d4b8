"""Log lines of the ``reelsearch.*`` loggers: JSON for collectors, plain for a terminal.

The standard library's logging with two small formatters rather than
structlog: the one structured thing reelsearch logs per request is the
access line, and a formatter that writes a dict with orjson costs a few
microseconds, with nothing to learn for a reader who knows ``logging``.

Fields beyond the message go in ``extra={"fields": {...}}``; both formats
print them (JSON as keys of the object, the console as ``key=value``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from reelsearch.config import Settings
from reelsearch.observability.linewriter import BatchedStreamHandler, has_descriptor

ROOT = "reelsearch"
_MAX_PIECES = 1024
_UNSEEN = ("", "")  # no pieces made yet for a (method, route, status)
_PID = os.getpid()  # the worker's, refreshed in a forked child


def _note_pid() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_note_pid)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then the record's fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC with milliseconds; the part up to the second is made once a second."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if record.exc_info:
            fields = {**(fields or {}), "exception": self.formatException(record.exc_info)}
        return self.line(
            record.created, record.levelname, record.name, record.process, record.getMessage(),
            fields,
        )  # fmt: skip

    def line(
        self,
        created: float,
        levelname: str,
        name: str,
        pid: int | None,
        message: str,
        fields: dict[str, Any] | None,
    ) -> str:
        """The JSON line of one record (``AccessLineWriter`` calls it without a record)."""
        line: dict[str, Any] = {
            "time": self._time(created),
            "level": levelname.lower(),
            "logger": name,
            "pid": pid,  # which worker process wrote it
            "message": message,
        }
        if fields:
            line.update(fields)
        return orjson.dumps(line, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """``12:00:01.234 INFO  reelsearch.access GET /v1/search 200 1.2 ms  key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            text += "  " + " ".join(f"{k}={_console_value(v)}" for k, v in fields.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class AccessLineWriter:
    """Writes a request's access line: directly when the JSON handler of
    ``configure_logging`` is all there is to go through, else as a log record.

    The direct way makes the same line the handler would (``JsonFormatter.line``)
    and writes it to the handler's stream under its lock: no ``LogRecord``, no
    handler and filter walk, ~2 µs instead of ~9.5 µs (bench/RESULTS.md, "Lean
    request path"). Whether it may is checked per line with a few identity
    tests, so a handler added later (a test's, an operator's) still gets every line.
    """

    __slots__ = ("logger", "_owner", "_pieces", "_pieces_pid", "_stamped", "_verified",
                 "_verified_formatter")  # fmt: skip

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        owner = logger.parent
        while owner is not None and owner.name != ROOT:
            owner = owner.parent
        self._owner = owner if owner is not None else logger
        # (method, route, status) -> the fixed parts of its line, or None where a
        # value would need JSON escaping (bounded: cleared past _MAX_PIECES).
        self._pieces: dict[tuple[str, str, int], tuple[str, str] | None] = {}
        self._pieces_pid = _PID  # the pieces name the process: remade in a forked child
        # The handler and formatter found fit for direct writes, checked in full once.
        self._verified: logging.StreamHandler[TextIO] | None = None
        self._verified_formatter: logging.Formatter | None = None
        self._stamped: tuple[int, str] = (-1, "")  # the last millisecond and its time string

    def write(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        request_id: str,
        cache: str | None,
    ) -> None:
        """Log one request (``request_id`` and ``cache`` are plain ASCII tokens)."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return  # no formatting of lines nobody reads
        ms = seconds * 1000
        handler = self._direct_handler()
        if self._pieces_pid != _PID:
            self._pieces.clear()
            self._pieces_pid = _PID
        pieces = self._pieces.get((method, route, status), _UNSEEN)
        if pieces is _UNSEEN:
            pieces = self._make_pieces(method, route, status)
        if handler is None or pieces is None:
            self._write_record(method, route, status, ms, request_id, cache)
            return
        head, middle = pieces
        now = time.time()
        millisecond = int(now * 1000)
        if millisecond != self._stamped[0]:  # under load many lines share a millisecond
            self._stamped = (millisecond, handler.formatter._time(now))  # type: ignore[union-attr]
        # The line JsonFormatter.format makes of the record, key for key and in order;
        # every string in it is known to need no escaping, so joining is exact.
        text = (
            f'{{"time":"{self._stamped[1]}"{head}{ms:.1f}{middle}'
            f'{round(ms, 3)!r},"request_id":"{request_id}"'
            + (f',"cache":"{cache}"}}\n' if cache is not None else "}\n")
        )
        if isinstance(handler, BatchedStreamHandler):
            handler.enqueue(text)  # written by the handler's thread (observability/linewriter.py)
            return
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.stream.flush()
        except Exception:  # as Handler.emit does: a broken stream must not fail the request
            handler.handleError(logging.makeLogRecord({"msg": text}))
        finally:
            handler.release()

    def _make_pieces(self, method: str, route: str, status: int) -> tuple[str, str] | None:
        if len(self._pieces) > _MAX_PIECES:
            self._pieces.clear()
        plain = all(orjson.dumps(text)[1:-1] == text.encode() for text in (method, route))
        pieces = (
            (
                f',"level":"info","logger":"{self.logger.name}","pid":{_PID},'
                f'"message":"{method} {route} {status} ',
                f' ms","method":"{method}","route":"{route}","status":{status},"duration_ms":',
            )
            if plain
            else None
        )
        self._pieces[(method, route, status)] = pieces
        return pieces

    def _write_record(
        self, method: str, route: str, status: int, ms: float, request_id: str, cache: str | None
    ) -> None:
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(ms, 3),
            "request_id": request_id,
        }
        if cache is not None:
            fields["cache"] = cache
        # Made here, a record skips Logger._log's caller lookup (a stack walk).
        record = logging.LogRecord(
            self.logger.name,
            logging.INFO,
            __file__,
            0,
            "%s %s %d %.1f ms",
            (method, route, status, ms),
            None,
        )
        record.fields = fields
        self.logger.handle(record)

    def _direct_handler(self) -> logging.StreamHandler[TextIO] | None:
        """The one handler every access line goes to, if writing to it directly is exact."""
        logger, owner = self.logger, self._owner
        handlers = owner.handlers
        if (
            len(handlers) != 1
            or logger.handlers
            or logger.filters
            or owner.filters
            or owner.propagate
            or not logger.propagate
            or owner is logger
        ):
            return None
        handler = handlers[0]
        if handler.filters or handler.level > logging.INFO:
            return None
        verified = self._verified
        if handler is verified and handler.formatter is self._verified_formatter:
            return verified
        if (
            handler.get_name() == "reelsearch"
            and type(handler.formatter) is JsonFormatter
            and isinstance(handler, logging.StreamHandler)
            and handler.terminator == "\n"
        ):
            self._verified, self._verified_formatter = handler, handler.formatter
            return handler
        return None


def _console_value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else repr(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send ``reelsearch.*`` records at ``settings.log_level`` and above to ``stream``.

    Replaces the handler a previous call installed (tests build many apps in
    one process) and leaves other libraries' loggers alone. A stream with a
    file descriptor (the server's stderr) is written in batches by a thread
    (observability/linewriter.py), so the event loop never waits on it.
    """
    stream = stream if stream is not None else sys.stderr
    form = settings.log_format
    if form == "auto":
        form = "console" if stream.isatty() else "json"
    handler: logging.StreamHandler[TextIO] = (
        BatchedStreamHandler(stream) if has_descriptor(stream) else logging.StreamHandler(stream)
    )
    handler.setFormatter(JsonFormatter() if form == "json" else ConsoleFormatter())
    handler.set_name("reelsearch")
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if h.get_name() == "reelsearch"]:
        logger.removeHandler(old)
        old.close()  # a batched handler writes what it holds and stops its thread
    logger.addHandler(handler)
    logger.setLevel(settings.log_level.upper())
    # Lines are written once, here; a root handler (a test's, granian's) would repeat them.
    logger.propagate = False
    return handler
