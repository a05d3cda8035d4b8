"""Database access: engines, pools and transactions for the catalog."""

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
