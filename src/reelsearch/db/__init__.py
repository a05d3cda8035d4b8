"""Database access: engines, pools and transactions for the catalog.

The names below are imported when first asked for (PEP 562), not with the package: a
worker serving a SQLite catalog takes ``ReadPool`` and must not pull in asyncpg (the
PostgreSQL transactions' client) or the plan checks with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelsearch.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from reelsearch.db.engine import ReadPool, connect_writer, make_sync_engine
    from reelsearch.db.explain import explain_query_plan, full_scans
    from reelsearch.db.transactions import (
        Connect,
        Isolation,
        TransactionStats,
        reuse_connection,
        run_transaction,
    )

__all__ = [
    "Connect",
    "Isolation",
    "ReadPool",
    "TransactionStats",
    "connect_writer",
    "explain_query_plan",
    "full_scans",
    "make_sync_engine",
    "reuse_connection",
    "run_transaction",
]

_HOMES = {
    "ReadPool": "reelsearch.db.engine",
    "connect_writer": "reelsearch.db.engine",
    "make_sync_engine": "reelsearch.db.engine",
    "explain_query_plan": "reelsearch.db.explain",
    "full_scans": "reelsearch.db.explain",
    "Connect": "reelsearch.db.transactions",
    "Isolation": "reelsearch.db.transactions",
    "TransactionStats": "reelsearch.db.transactions",
    "reuse_connection": "reelsearch.db.transactions",
    "run_transaction": "reelsearch.db.transactions",
}


__getattr__ = lazy_exports(__name__, _HOMES)
