"""Fixtures of the result-cache tests: real Redis (databases 7 and 8), real disk, entries."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis

from redis_port import REDIS_HOST, REDIS_PORT
from reelsearch.cache.entry import CachedResponse, strong_etag

# This suite's Redis databases: nobody else uses them, so flushdb per test is safe.
REDIS_DB, REDIS_DB_SECOND = 7, 8


def redis_problem() -> str | None:
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        return f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}: {exc}"
    return None


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A flushed Redis database of this suite, as a URL (CI fails without Redis; else skip)."""
    problem = redis_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    client.flushdb()
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    client.flushdb()
    client.close()


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """Forwards a loopback port to Redis; stopping it looks like Redis going down or away.

    ``silent`` accepts connections and never answers: a hung Redis.
    """

    def __init__(self, target_port: int = REDIS_PORT, *, silent: bool = False) -> None:
        self.target_port = target_port
        self.silent = silent
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection through it (like a Redis restart)."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.silent:
            await reader.read()  # never answers
            return
        up_reader, up_writer = await asyncio.open_connection(REDIS_HOST, self.target_port)
        self._writers.append(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    server = TcpProxy()
    await server.start()
    yield server
    if server._server is not None and server._server.is_serving():
        await server.stop()


@pytest.fixture
def make_entry() -> Callable[..., CachedResponse]:
    """Entries with a body of ``size`` bytes, fresh for ``fresh`` s, stale ``stale`` s more."""

    def make(
        body: bytes | None = None,
        *,
        size: int = 100,
        fresh: float = 60.0,
        stale: float = 60.0,
        tags: tuple[str, ...] = (),
    ) -> CachedResponse:
        data = body if body is not None else os.urandom(size // 2).hex().encode()[:size]
        now = time.time()
        return CachedResponse(
            body=data,
            etag=strong_etag(data),
            last_modified="Sun, 06 Dec 2026 09:00:00 GMT",
            created_at=now,
            fresh_until=now + fresh,
            stale_until=now + fresh + stale,
            tags=tags,
        )

    return make
