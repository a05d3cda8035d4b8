"""Planner statistics refreshed inside an import, where a step's plan depends on them.

An import replaces most of the catalog inside one transaction, so the
statistics the planner holds describe the previous catalog until they are
refreshed. With a 3-row previous catalog, SQLite planned the ranking
``UPDATE ... FROM`` as a scan of ``movies`` per ranked row: 313 s for the
58,788-movie sample instead of about 2 s (issue 11). Refreshing the
statistics of the tables a step reads, right before it, makes each step's
plan follow the rows it will really meet. ``ANALYZE`` inside the write
transaction is transactional like the rest (a rolled-back import leaves the
old statistics).
"""

from __future__ import annotations

import sqlite3

# Rows SQLite samples per index: enough for the row counts and selectivity the
# import's joins depend on, and it keeps ANALYZE of a 1 M-title catalog to
# tens of milliseconds (a full ANALYZE reads every index: seconds).
SQLITE_ANALYSIS_LIMIT = 1000


def refresh_sqlite_statistics(conn: sqlite3.Connection, *tables: str) -> None:
    """``ANALYZE`` ``tables`` (every table if none), sampling ``SQLITE_ANALYSIS_LIMIT`` rows."""
    conn.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
    if not tables:
        conn.execute("ANALYZE")
    for table in tables:
        conn.execute(f'ANALYZE "{table}"')
