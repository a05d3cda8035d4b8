"""Where web-page sessions live: a SQLite file (embedded) or Redis (shared by every host).

Both stores keep opaque bytes per session id with a sliding expiry: reading a
session pushes its expiry ``ttl`` seconds ahead, so a session lives as long
as it is used. Both also keep the key that signs session cookies, created
once by whichever process asks first, so every worker signs alike and a
restart does not log everyone out.

    SessionStore (Protocol)
    ├── SQLiteSessionStore   one table, a thread per call, cleanup deletes expired rows
    └── RedisSessionStore    SET EX / GETEX; Redis expires keys itself
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio

from reelsearch.config import Settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# The cookie-signing key: 32 random bytes, as HMAC-SHA256 wants.
SECRET_BYTES = 32


class SessionStore(Protocol):
    """Bytes per session id, expiring ``ttl`` seconds after the last read or write."""

    async def read(self, session_id: str, ttl: float) -> bytes | None:
        """The session's bytes (None if absent or expired); slides its expiry."""
        ...

    async def write(self, session_id: str, data: bytes, ttl: float) -> None: ...

    async def delete(self, session_id: str) -> None: ...

    async def delete_expired(self) -> int:
        """Remove expired sessions; how many went (0 where the store expires them itself)."""
        ...

    async def signing_key(self) -> bytes:
        """The key every process signs cookies with, created on first use."""
        ...

    async def close(self) -> None: ...


class SQLiteSessionStore:
    """Sessions in one SQLite table; blocking calls run in a worker thread.

    One connection behind a lock: session writes are rare (a watchlist
    click), and WAL lets other processes read meanwhile.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS sessions ("
            " id TEXT PRIMARY KEY, data BLOB NOT NULL, expires REAL NOT NULL)"
        )
        self._conn.execute("CREATE INDEX IF NOT EXISTS ix_sessions_expires ON sessions (expires)")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS session_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
        )

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    async def _call(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        return await anyio.to_thread.run_sync(self._run, sql, params)

    async def read(self, session_id: str, ttl: float) -> bytes | None:
        now = time.time()
        rows = await self._call(
            "UPDATE sessions SET expires = ? WHERE id = ? AND expires > ? RETURNING data",
            now + ttl,
            session_id,
            now,
        )
        return bytes(rows[0][0]) if rows else None

    async def write(self, session_id: str, data: bytes, ttl: float) -> None:
        await self._call(
            "INSERT INTO sessions (id, data, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires = excluded.expires",
            session_id,
            data,
            time.time() + ttl,
        )

    async def delete(self, session_id: str) -> None:
        await self._call("DELETE FROM sessions WHERE id = ?", session_id)

    async def delete_expired(self) -> int:
        rows = await self._call("DELETE FROM sessions WHERE expires <= ? RETURNING 1", time.time())
        return len(rows)

    async def signing_key(self) -> bytes:
        candidate = secrets.token_bytes(SECRET_BYTES)
        # INSERT OR IGNORE then SELECT: the first process to ask decides for all.
        await self._call(
            "INSERT OR IGNORE INTO session_meta (name, value) VALUES ('signing_key', ?)", candidate
        )
        rows = await self._call("SELECT value FROM session_meta WHERE name = 'signing_key'")
        return bytes(rows[0][0])

    async def count(self) -> int:
        """Sessions stored, expired or not (for tests and metrics)."""
        rows = await self._call("SELECT count(*) FROM sessions")
        return int(rows[0][0])

    async def close(self) -> None:
        with self._lock:
            self._conn.close()


class RedisSessionStore:
    """Sessions as Redis strings with a TTL; Redis deletes expired ones itself."""

    PREFIX = "reelsearch:session:"
    KEY_NAME = "reelsearch:session-signing-key"

    def __init__(self, url: str) -> None:
        # Imported here: a worker whose sessions are not in Redis does not hold redis-py.
        import redis.asyncio as aioredis

        # Bounded waits: a page view must not hang on a host that stopped answering.
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2
        )

    async def read(self, session_id: str, ttl: float) -> bytes | None:
        # GETEX (Redis 6.2+): read and slide the expiry in one round trip.
        data = await self.client.getex(self.PREFIX + session_id, px=int(ttl * 1000))
        return cast("bytes | None", data)

    async def write(self, session_id: str, data: bytes, ttl: float) -> None:
        await self.client.set(self.PREFIX + session_id, data, px=int(ttl * 1000))

    async def delete(self, session_id: str) -> None:
        await self.client.delete(self.PREFIX + session_id)

    async def delete_expired(self) -> int:
        return 0  # keys carry their own TTL

    async def signing_key(self) -> bytes:
        await self.client.set(self.KEY_NAME, secrets.token_bytes(SECRET_BYTES), nx=True)
        return cast(bytes, await self.client.get(self.KEY_NAME))

    async def close(self) -> None:
        await self.client.aclose()


def default_session_path(settings: Settings) -> str:
    """The SQLite session file: configured, else beside a SQLite catalog."""
    if settings.session_path:
        return settings.session_path
    if settings.backend == "sqlite" and settings.sqlite_path != ":memory:":
        catalog = Path(settings.sqlite_path)
        return str(catalog.with_name(f"{catalog.stem}-sessions.db"))
    return "./reelsearch-sessions.db"


def open_session_store(settings: Settings) -> SessionStore:
    """Redis when ``REELSEARCH_REDIS_URL`` is set, else the SQLite file."""
    if settings.redis_url:
        return RedisSessionStore(settings.redis_url)
    return SQLiteSessionStore(default_session_path(settings))
