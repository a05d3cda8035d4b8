"""What ``/ready`` reports: each dependency with its state and the reason.

- ``catalog``: the search engine reads its catalog (required);
- ``migrations``: the catalog's schema is at the newest migration this code
  knows (required: older, and the queries may name columns it lacks);
- ``redis``: answers PING, when ``REELSEARCH_REDIS_URL`` is set (not
  required: the cache falls through to its other levels without it, so the
  service still serves, degraded).

The service is ready when every required dependency is up. Changes of
state are logged once, when they happen (down with the reason, then
recovered), not once per check.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from reelsearch.config import Settings

logger = logging.getLogger("reelsearch.ready")

# A check that takes longer than this has failed: a balancer polls /ready
# every few seconds and must not pile up waiting requests.
CHECK_TIMEOUT = 2.0
_ALEMBIC_VERSION_SQL = "SELECT version_num FROM alembic_version"
# What the import recorded about itself (catalog/records.py import_meta_rows), in one
# value: "seconds,rows_read,bad_rows" with blanks for figures an older import lacks.
IMPORT_FIGURES = ("seconds", "rows_read", "bad_rows")
_IMPORT_FIGURES_SQL = "SELECT " + " || ',' || ".join(
    f"COALESCE((SELECT value FROM catalog_meta WHERE key = 'import_{name}'), '')"
    for name in IMPORT_FIGURES
)


@dataclass(frozen=True, slots=True)
class DependencyState:
    """One dependency as last checked."""

    name: str
    is_up: bool
    is_required: bool
    reason: str  # "ok", or what failed, without credentials


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    dependencies: tuple[DependencyState, ...]

    @property
    def is_ready(self) -> bool:
        return all(d.is_up for d in self.dependencies if d.is_required)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.is_ready else "not_ready",
            "dependencies": {
                d.name: {
                    "state": "up" if d.is_up else "down",
                    "required": d.is_required,
                    "reason": d.reason,
                }  # fmt: skip
                for d in self.dependencies
            },
        }


# The newest migration revision this code ships, written out so that a worker checking
# readiness does not import alembic (with mako and pygments, ~20 MiB of modules in every
# worker) to read it; a test holds it equal to migrations_head().
SCHEMA_HEAD = "0008"


def migrations_head() -> str:
    """The newest migration revision this code ships, as alembic reads the migrations."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from reelsearch.catalog.schema import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "the migrations directory has no head revision"
    return head


class CatalogDatabase:
    """Short-lived connections of its own to the catalog, for checks off the request path.

    The engine's pool serves searches; a check that waited for one of its
    connections would report a busy pool as a dead database.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def scalar(self, sql: str) -> str | None:
        if self.settings.backend == "postgresql":
            import asyncpg

            conn = await asyncpg.connect(self.settings.postgres_dsn, timeout=CHECK_TIMEOUT)
            try:
                value = await conn.fetchval(sql)
            finally:
                await conn.close()
            return None if value is None else str(value)
        return await anyio.to_thread.run_sync(self._sqlite_scalar, sql)

    def _sqlite_scalar(self, sql: str) -> str | None:
        path = Path(self.settings.sqlite_path)
        if not path.exists():
            raise FileNotFoundError(f"no catalog file at {path}")
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=CHECK_TIMEOUT)
        try:
            found = conn.execute(sql).fetchone()
        finally:
            conn.close()
        return None if found is None else str(found[0])

    async def import_figures(self) -> dict[str, float]:
        """The import's duration, rows read and bad rows, as far as it recorded them."""
        raw = await self.scalar(_IMPORT_FIGURES_SQL) or ""
        return {
            name: float(value)
            for name, value in zip(IMPORT_FIGURES, raw.split(","), strict=False)
            if value
        }


class Readiness:
    """Checks the dependencies, and logs each change of state once."""

    def __init__(self, settings: Settings, ping_catalog: Callable[[], Awaitable[None]]) -> None:
        self.settings = settings
        self.database = CatalogDatabase(settings)
        self._ping_catalog = ping_catalog
        self._head = SCHEMA_HEAD
        self._last: dict[str, bool] = {}

    async def check(self) -> ReadinessReport:
        checks = [
            self._run("catalog", True, self._check_catalog),
            self._run("migrations", True, self._check_migrations),
        ]
        if self.settings.redis_url:
            checks.append(self._run("redis", False, self._check_redis))
        states = await asyncio.gather(*checks)
        for state in states:
            self._log_change(state)
        return ReadinessReport(tuple(states))

    async def _run(
        self, name: str, required: bool, check: Callable[[], Awaitable[str]]
    ) -> DependencyState:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                reason = await check()
        except TimeoutError:
            return DependencyState(name, False, required, f"no answer in {CHECK_TIMEOUT:g} s")
        except Exception as exc:  # any failure is the reason the dependency is down
            return DependencyState(name, False, required, _describe(exc))
        return DependencyState(name, reason == "ok", required, reason)

    async def _check_catalog(self) -> str:
        await self._ping_catalog()
        return "ok"

    async def _check_migrations(self) -> str:
        current = await self.database.scalar(_ALEMBIC_VERSION_SQL)
        if current == self._head:
            return "ok"
        return (
            f"schema at revision {current}, this code needs {self._head}: "
            "run `reelsearch upgrade` (or an import)"
        )

    async def _check_redis(self) -> str:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(
            self.settings.redis_url,
            socket_timeout=CHECK_TIMEOUT,
            socket_connect_timeout=CHECK_TIMEOUT,
        )
        try:
            await client.ping()
        finally:
            await client.aclose()
        return "ok"

    def _log_change(self, state: DependencyState) -> None:
        was_up = self._last.get(state.name)
        self._last[state.name] = state.is_up
        if was_up is None and state.is_up or was_up == state.is_up:
            return
        if state.is_up:
            logger.info("dependency %s recovered", state.name,
                        extra={"fields": {"dependency": state.name}})  # fmt: skip
        else:
            logger.warning(
                "dependency %s is down: %s",
                state.name,
                state.reason,
                extra={"fields": {"dependency": state.name, "reason": state.reason}},
            )


def _describe(exc: BaseException) -> str:
    """A failure in a few words: the innermost error's type and message, no credentials."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # URLs in messages may carry a password; the type and the rest say enough.
    if "://" in message:
        message = message.split("://", 1)[0] + "://…"
    return f"{type(exc).__name__}: {message[:200]}" if message else type(exc).__name__
