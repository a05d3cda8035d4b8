"""EXPLAIN QUERY PLAN helpers: prove a query uses an index, not a full scan."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from typing import Any

# "SCAN movies" without "USING ... INDEX" reads every row of the table.
_FULL_SCAN = re.compile(r"^SCAN (\w+)(?: AS \w+)?$")


def explain_query_plan(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[str]:
    """The plan lines SQLite would use for ``sql``."""
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return [str(row[3]) for row in rows]


def full_scans(plan: Sequence[str], table: str) -> list[str]:
    """The lines of ``plan`` that read all of ``table`` without an index."""
    return [line for line in plan if (m := _FULL_SCAN.match(line.strip())) and m[1] == table]
