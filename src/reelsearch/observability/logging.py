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
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from reelsearch.config import Settings

ROOT = "reelsearch"


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
        line: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker process wrote it
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
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
