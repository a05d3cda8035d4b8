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

ROOT = "reelsearch"
_MAX_PLAIN_CHECKED = 256
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

    __slots__ = ("logger", "_owner", "_plain")

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        owner = logger.parent
        while owner is not None and owner.name != ROOT:
            owner = owner.parent
        self._owner = owner if owner is not None else logger
        # Methods and routes already checked to need no JSON escaping (bounded:
        # routes are the app's templates; methods are cleared past a few).
        self._plain: dict[str, bool] = {}

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
        if handler is None or not (self._is_plain(method) and self._is_plain(route)):
            self._write_record(method, route, status, ms, request_id, cache)
            return
        stamp = handler.formatter._time(time.time())  # type: ignore[union-attr]
        # The line JsonFormatter.format makes of the record, key for key: every
        # string in it is known to need no escaping, so an f-string is exact.
        text = (
            f'{{"time":"{stamp}","level":"info","logger":"{logger.name}","pid":{_PID},'
            f'"message":"{method} {route} {status} {ms:.1f} ms","method":"{method}",'
            f'"route":"{route}","status":{status},"duration_ms":{round(ms, 3)!r},'
            f'"request_id":"{request_id}"'
            + (f',"cache":"{cache}"}}' if cache is not None else "}")
            + handler.terminator
        )
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.stream.flush()
        except Exception:  # as Handler.emit does: a broken stream must not fail the request
            handler.handleError(logging.makeLogRecord({"msg": text}))
        finally:
            handler.release()

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

    def _is_plain(self, text: str) -> bool:
        known = self._plain.get(text)
        if known is None:
            if len(self._plain) > _MAX_PLAIN_CHECKED:
                self._plain.clear()
            known = self._plain[text] = orjson.dumps(text)[1:-1] == text.encode()
        return known

    def _direct_handler(self) -> logging.StreamHandler[TextIO] | None:
        """The one handler every access line goes to, if writing to it directly is exact."""
        logger, owner = self.logger, self._owner
        if logger.handlers or logger.filters or not logger.propagate or owner is logger:
            return None
        handlers = owner.handlers
        if len(handlers) != 1 or owner.propagate or owner.filters:
            return None
        handler = handlers[0]
        if (
            handler.get_name() != "reelsearch"
            or handler.filters
            or handler.level > logging.INFO
            or type(handler.formatter) is not JsonFormatter
            or not isinstance(handler, logging.StreamHandler)
        ):
            return None
        return handler


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
    one process) and leaves other libraries' loggers alone.
    """
    stream = stream if stream is not None else sys.stderr
    form = settings.log_format
    if form == "auto":
        form = "console" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if form == "json" else ConsoleFormatter())
    handler.set_name("reelsearch")
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if h.get_name() == "reelsearch"]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(settings.log_level.upper())
    # Lines are written once, here; a root handler (a test's, granian's) would repeat them.
    logger.propagate = False
    return handler
