"""How long the catalog's statements take, by query shape, for the metrics.

A shape is a name for a kind of statement the search engine sends, read
from its SQL text: ``text_match`` (rows of titles matching words; on
PostgreSQL also the relevance page's one statement),
``tiers`` (the relevance tiers in one UNION), ``count`` (how many match),
``facets``, ``rows_by_rank`` (the hits of a page by rank), ``filter_page``
(filtered or sorted rows without words), ``alt_titles``, ``movie`` (one
movie by id), ``explain`` (the slow-request log's plans) and ``other``.
The set is fixed here, so a label can never carry a query's text, and a
new kind of statement shows as ``other`` until it is named.

The pools time their statements (db/engine.py: a SQLite connection class
that times each execute and fetch; db/postgres.py: asyncpg's query logger)
into a ``StatementTimes``; the metrics sampler drains it once a tick. A
statement costs two clock reads, a dict lookup and a lock (SQLite reads
may run in threads): well under a microsecond beside its own tens.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
import time
from functools import lru_cache
from typing import Any

# Statement durations: an indexed lookup (~20 µs) to a deadline (seconds).
QUERY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)

# The first rule whose every marker is in the SQL (lower-cased, spaces collapsed) names it.
_SHAPE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("explain", ("explain ",)),  # the slow-request log reading a plan
    # PostgreSQL's relevance page in one statement (search/postgres_page.py): the
    # text match, with its tiers and counts inside (so before "count" and "tiers").
    ("text_match", ("with p as materialized (",)),
    ("facets", ("group by decade",)),
    ("facets", ("total((m.genre_mask",)),
    ("facets", ("select m.genre_mask, ", " group by 1")),  # search/facets.py: one pass
    ("facets", ("select null, m.year / 10 * 10, ", " group by 2")),
    ("count", ("select count(*)",)),
    ("tiers", ("as tier",)),
    ("alt_titles", ("from alt_titles",)),
    ("rows_by_rank", ("from movies as m where m.search_rank in (",)),
    ("text_match", ("title_fts",)),
    ("text_match", ("title_tsv",)),
    ("movie", ("from movies as m where m.id",)),
    ("movie", ("from movies as m where m.source_key",)),
    ("filter_page", ("from movies as m where",)),
)
SHAPES = tuple(dict.fromkeys(name for name, _ in _SHAPE_RULES)) + ("other",)


@lru_cache(maxsize=2048)
def query_shape(sql: str) -> str:
    """The shape of a statement (one of ``SHAPES``), never its text."""
    text = " ".join(sql.lower().split())
    for name, markers in _SHAPE_RULES:
        if all(marker in text for marker in markers):
            return name
    return "other"


class ShapeTimes:
    """Observations of one shape since the last drain: counts per bucket and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(QUERY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0


class StatementTimes:
    """Per-shape timings of one pool's statements, drained by the metrics sampler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, ShapeTimes] = {}

    def record(self, sql: str, seconds: float) -> None:
        shape = query_shape(sql)
        with self._lock:
            times = self._times.get(shape)
            if times is None:
                times = self._times[shape] = ShapeTimes()
            times.counts[bisect.bisect_left(QUERY_BUCKETS, seconds)] += 1
            times.total += seconds

    def record_logged(self, record: Any) -> None:
        """asyncpg's query logger callback (``Connection.add_query_logger``)."""
        self.record(record.query, record.elapsed)

    def drain(self) -> dict[str, ShapeTimes]:
        """What was recorded since the last drain, by shape; starts afresh."""
        with self._lock:
            times, self._times = self._times, {}
        return times


class TimedCursor(sqlite3.Cursor):
    """A cursor that reports its statement's time once its rows are fetched."""

    times: StatementTimes
    sql: str
    started: float

    def fetchall(self) -> list[Any]:
        rows = super().fetchall()
        self.times.record(self.sql, time.perf_counter() - self.started)
        return rows

    def fetchone(self) -> Any:
        row = super().fetchone()
        self.times.record(self.sql, time.perf_counter() - self.started)
        return row


class TimedConnection(sqlite3.Connection):
    """A sqlite3 connection whose ``execute(...).fetchall()/fetchone()`` is timed.

    The search readers run every statement as ``conn.execute(sql, params)``
    then one fetch; the time from the execute to the end of the fetch is the
    statement's. Statements never fetched (BEGIN, PRAGMA) are not recorded.
    ``times`` is set by the pool right after connecting.
    """

    times: StatementTimes | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        if self.times is None:
            return super().execute(sql, parameters)
        cursor = self.cursor(TimedCursor)
        cursor.times = self.times
        cursor.sql = sql
        cursor.started = time.perf_counter()
        return cursor.execute(sql, parameters)
