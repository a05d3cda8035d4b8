"""How a long command (an import, ``generate``) tells the person waiting how far it is.

One small interface, three ways to show it, chosen once by the command line:

- :class:`BarProgress`: a tqdm bar with rate and ETA, on a terminal;
- :class:`LineProgress`: a plain line every few seconds and at each end of a
  task, when stderr is a file or a pipe (logs, CI), where a redrawn bar would
  be noise;
- :class:`Progress` itself: nothing at all (``--quiet``, and library callers
  that pass no progress).

Readers call ``begin``/``update_to``/``end`` around a file (in bytes of the
file as stored, so a gzipped dump's ETA is right), writers call ``step_done``
at the end of each finishing step (ranking, indexes...), which have no rows to
count but can take seconds at a million titles, and ``committed`` right after
their COMMIT (steps may follow it: PostgreSQL's VACUUM).
"""

from __future__ import annotations

import os
import time
from typing import Any, TextIO

# Plain lines at most this often (seconds) while a task runs.
LINE_INTERVAL = 5.0
# A reader reports its position every this many rows: a tell() per row would
# cost more than the row, and 16 k rows are a few milliseconds of reading.
ROWS_PER_UPDATE = 16_384

_WITH_TOTAL = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"  # noqa: E501
)
_WITHOUT_TOTAL = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


class Progress:
    """Progress that shows nothing: the base of the others and the ``--quiet`` choice."""

    # The catalog version the import committed (None: not yet, or rolled back): what a
    # command interrupted from then on reports, instead of a rollback that did not happen.
    committed_version: int | None = None

    def begin(self, task: str, *, total: float | None = None, unit: str = "rows") -> None:
        """A task starts: ``total`` units to do (None if unknown)."""

    def update_to(self, done: float, *, note: str = "") -> None:
        """``done`` units of the current task are done; ``note`` says more (e.g. rows read)."""

    def end(self) -> None:
        """The current task is complete."""

    def step_done(self, name: str, seconds: float) -> None:
        """A step without units (ranking, an index build) took ``seconds``."""

    def committed(self, version: int) -> None:
        """The import's transaction committed catalog ``version``: it stands from here on."""
        self.committed_version = version

    def close(self) -> None:
        """The command is over: release the terminal."""


class LineProgress(Progress):
    """Plain lines on ``stream``: at most one per ``interval`` seconds, and one per task end."""

    def __init__(self, stream: TextIO, *, interval: float = LINE_INTERVAL) -> None:
        self.stream = stream
        self.interval = interval
        self._task: str | None = None
        self._total: float | None = None
        self._unit = "rows"
        self._done = 0.0
        self._note = ""
        self._started = self._printed = 0.0

    def begin(self, task: str, *, total: float | None = None, unit: str = "rows") -> None:
        self._task, self._total, self._unit = task, total, unit
        self._done, self._note = 0.0, ""
        self._started = self._printed = time.monotonic()

    def update_to(self, done: float, *, note: str = "") -> None:
        self._done, self._note = done, note
        now = time.monotonic()
        if now - self._printed >= self.interval:
            self._printed = now
            self._line(now)

    def end(self) -> None:
        if self._task is None:
            return
        if self._total is not None:
            self._done = self._total
        self._line(time.monotonic())
        self._task = None

    def step_done(self, name: str, seconds: float) -> None:
        self._write(f"reelsearch: {name} done in {seconds:.1f} s")

    def _line(self, now: float) -> None:
        assert self._task is not None
        self._write("reelsearch: " + _meter(self._task, self._done, self._total, self._unit,
                                              now - self._started, self._note))  # fmt: skip

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class BarProgress(Progress):
    """A tqdm bar per task on ``stream`` (a terminal), redrawn in place with rate and ETA."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bar: Any = None

    def begin(self, task: str, *, total: float | None = None, unit: str = "rows") -> None:
        from tqdm import tqdm  # only commands that show a bar load it

        self.end()
        self._bar = tqdm(
            total=total,
            desc=task,
            unit=unit,
            unit_scale=True,
            unit_divisor=1024 if unit == "B" else 1000,
            file=self.stream,
            ncols=_width(self.stream),
            leave=True,
        )

    def update_to(self, done: float, *, note: str = "") -> None:
        if self._bar is None:
            return
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(done - self._bar.n)

    def end(self) -> None:
        if self._bar is None:
            return
        if self._bar.total is not None:
            self._bar.update(self._bar.total - self._bar.n)
        self._bar.close()
        self._bar = None

    def step_done(self, name: str, seconds: float) -> None:
        from tqdm import tqdm

        tqdm.write(f"{name} done in {seconds:.1f} s", file=self.stream)

    def close(self) -> None:
        self.end()


def _width(stream: TextIO) -> int:
    """The terminal's width; 80 where it reports none (a new pseudo-terminal says 0)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError):
        return 80


def progress_for(stream: TextIO, *, quiet: bool = False) -> Progress:
    """The progress a command shows on ``stream``: a bar on a terminal, else plain lines."""
    if quiet:
        return Progress()
    if stream.isatty():
        return BarProgress(stream)
    return LineProgress(stream)


def _meter(task: str, done: float, total: float | None, unit: str, elapsed: float,
           note: str) -> str:  # fmt: skip
    """One progress line as tqdm formats its bars, without the bar."""
    from tqdm import tqdm

    return str(
        tqdm.format_meter(
            done,
            total or 0,  # 0: unknown
            elapsed,
            prefix=task,
            unit=unit,
            unit_scale=True,
            unit_divisor=1024 if unit == "B" else 1000,
            bar_format=_WITH_TOTAL if total else _WITHOUT_TOTAL,
            postfix=note or None,
        )
    )
