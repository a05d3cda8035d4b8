"""One entry point for catalog writes of a few movies, on either backend.

``CatalogWriter.write(operations)`` applies puts and deletes in one
transaction and reports each one's outcome (``catalog/documents.py``). The
first write of a process brings the schema up to date (migration 0005 adds
the change records), so a catalog imported by an older release can be
written to without a re-import.

- SQLite: the blocking writer runs in a thread, one at a time per process
  (SQLite has one writer anyway: queueing here costs no lock wait);
- PostgreSQL: asyncpg connections from ``connect`` (the search engine's pool
  in the server), or from one connection of its own.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from reelsearch.catalog.documents import Operation, WriteReport
from reelsearch.config import Settings
from reelsearch.db.transactions import Connect, TransactionStats

if TYPE_CHECKING:
    import asyncpg


# Alembic keeps the running migration in module-level proxies: two upgrades at once in
# one process (two writers' first writes) would overwrite each other's. One at a time.
_MIGRATING = threading.Lock()


def _upgrade_schema(settings: Settings) -> None:
    # Imported at the first write: alembic (with mako and pygments) is ~20 MiB of
    # modules that a serving worker which is never written to does not need.
    from reelsearch.catalog.schema import upgrade_schema

    with _MIGRATING:
        upgrade_schema(settings)


class CatalogWriter:
    """Applies documents-API operations to the catalog of ``settings``."""

    def __init__(self, settings: Settings, connect: Connect | None = None) -> None:
        self.settings = settings
        self.stats = TransactionStats()
        self._connect = connect
        self._migrated = False
        self._one_at_a_time = anyio.Lock()

    async def write(self, operations: Sequence[Operation]) -> WriteReport:
        """Apply ``operations`` (each movie at most once) in one transaction."""
        if not self._migrated:
            async with self._one_at_a_time:
                if not self._migrated:
                    await anyio.to_thread.run_sync(_upgrade_schema, self.settings)
                    self._migrated = True
        if self.settings.backend == "postgresql":
            from reelsearch.catalog.documents_postgres import write_movies

            return await write_movies(
                self._connect or self._own_connection,
                operations,
                lock_timeout_ms=self.settings.write_lock_timeout_ms,
                stats=self.stats,
            )
        from reelsearch.catalog.documents_sqlite import write_movies as write_sqlite

        async with self._one_at_a_time:
            return await anyio.to_thread.run_sync(write_sqlite, self.settings, operations)

    @asynccontextmanager
    async def _own_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A fresh asyncpg connection per attempt (CLI, scripts; the server passes a pool)."""
        import asyncpg

        conn = await asyncpg.connect(self.settings.postgres_dsn)
        try:
            yield conn
        finally:
            await conn.close()
