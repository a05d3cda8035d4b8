"""The slow-request log: what a request past the threshold asked, where its time went, and the plan.

A request slower than ``REELSEARCH_SLOW_REQUEST_MS`` is logged once (logger
``reelsearch.slow``) with its route, method, status, duration, request id,
its parameters (at most ``MAX_PARAMS``, each value cut to ``MAX_VALUE_CHARS``),
the time of each stage it went through, and, for a search, autocomplete or
movie request, the database part: every statement the engine sends for
that request, with the plan the database chooses for it (EXPLAIN QUERY PLAN
on SQLite, EXPLAIN on PostgreSQL).

The plan is read after the response is sent, by replaying the request's
reads through a ``RecordingReader`` in a task of its own (SQLite in a
thread), one at a time per worker: a burst of slow requests must not turn
into a burst of EXPLAINs. Reading a plan does not run the statements again
beyond what the replay reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.types import Scope

from reelsearch.db.explain import explain_query_plan

logger = logging.getLogger("reelsearch.slow")

MAX_PARAMS = 20
MAX_VALUE_CHARS = 100
# Routes whose database work can be replayed for its plan.
PLANNED_ROUTES = ("/v1/search", "/v1/autocomplete", "/v1/movies/{movie_id}")

Plans = list[dict[str, Any]]
EngineCall = Callable[[Any], Coroutine[Any, Any, Any]]  # reader -> the engine's reads


def bounded_params(query_string: bytes) -> dict[str, str]:
    """The request's parameters, few and short enough for a log line."""
    text = query_string[: MAX_PARAMS * (MAX_VALUE_CHARS + 50)].decode("utf-8", "replace")
    params: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True)[:MAX_PARAMS]:
        params[key[:40]] = value[:MAX_VALUE_CHARS]
    return params


class SlowRequestLog:
    """Decides what is slow and writes the line, with the plan when there is one."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold = threshold_ms / 1000 if threshold_ms > 0 else float("inf")
        self.engine: Any = None  # set when the engine is open (the app's lifespan)
        self._planning: asyncio.Task[None] | None = None

    async def finish(self) -> None:
        """Stop a plan being read, before the engine closes: its task holds one of the
        pool's connections, which a task left pending at shutdown would never give back
        (the collector would find it checked out)."""
        planning, self._planning = self._planning, None
        if planning is None or planning.done():
            return
        planning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await planning

    def is_slow(self, seconds: float) -> bool:
        return seconds >= self.threshold

    def record(
        self,
        scope: Scope,
        route: str,
        status: int,
        seconds: float,
        stages: dict[str, float],
        request_id: str,
    ) -> None:
        fields: dict[str, Any] = {
            "route": route,
            "method": scope["method"],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": request_id,
            "params": bounded_params(scope.get("query_string", b"")),
            "stages_ms": {name: round(s * 1000, 3) for name, s in stages.items()},
        }
        replay = self._replay_for(route, scope) if status < 400 else None
        if replay is None:
            self._write(fields)
        elif self._planning is not None and not self._planning.done():
            fields["plans"] = "not read: another slow request's plan is being read"
            self._write(fields)
        else:
            self._planning = asyncio.get_running_loop().create_task(
                self._write_with_plans(fields, replay)
            )

    async def _write_with_plans(
        self, fields: dict[str, Any], replay: Callable[[], Awaitable[Plans]]
    ) -> None:
        try:
            fields["plans"] = await replay()
        except Exception as exc:  # the line is still worth writing without its plan
            fields["plans"] = f"not read: {type(exc).__name__}: {exc}"[:300]
        self._write(fields)

    def _write(self, fields: dict[str, Any]) -> None:
        logger.warning(
            "slow request: %s %s took %.1f ms",
            fields["method"],
            fields["route"],
            fields["duration_ms"],
            extra={"fields": fields},
        )

    def _replay_for(self, route: str, scope: Scope) -> Callable[[], Awaitable[Plans]] | None:
        """A function that replays the request's reads and returns their plans, if it can."""
        if route not in PLANNED_ROUTES or self.engine is None:
            return None
        call = _engine_call(route, scope, self.engine)
        if call is None:
            return None
        inner = getattr(self.engine, "engine", self.engine)  # the blocking SQLite engine
        if getattr(inner, "settings", None) is not None and inner.settings.backend == "postgresql":
            return lambda: _postgres_plans(inner, call)
        return lambda: anyio.to_thread.run_sync(_sqlite_plans, inner, call)


def _engine_call(route: str, scope: Scope, engine: Any) -> EngineCall | None:
    """``reader -> the engine's reads for this request`` (the parse repeated), or None."""
    from reelsearch.errors import InvalidRequest
    from reelsearch.http.params import query_pairs
    from reelsearch.search.query import parse_autocomplete, parse_search

    inner = getattr(engine, "engine", engine)
    tiered, snapshot = inner.tiered, engine.snapshot
    try:
        if route == "/v1/movies/{movie_id}":
            movie_id = int(scope["path_params"]["movie_id"])
            return lambda reader: tiered.get_movie(reader, movie_id)
        pairs = query_pairs(scope.get("query_string", b""))
        limits = inner.settings.query_limits  # as the route parsed this request
        if route == "/v1/search":
            query = parse_search(pairs, **limits)
            return lambda reader: tiered.search(reader, snapshot, query)
        query = parse_autocomplete(pairs, **limits)
        return lambda reader: tiered.autocomplete(reader, snapshot, query)
    except (InvalidRequest, KeyError, ValueError):
        return None


def _sqlite_plans(inner: Any, call: EngineCall) -> Plans:
    from reelsearch.search.readers import RecordingReader, SqliteReader, Statement, run_inline

    seen: list[Statement] = []
    with inner.pool.connection() as conn:
        run_inline(call(RecordingReader(SqliteReader(conn), seen)))
        return [
            {"sql": sql, "params": list(params)[:MAX_PARAMS],
             "plan": explain_query_plan(conn, sql, params)}
            for sql, params in seen
        ]  # fmt: skip


async def _postgres_plans(inner: Any, call: EngineCall) -> Plans:
    from reelsearch.search.readers import PostgresReader, RecordingReader, Statement, numbered

    seen: list[Statement] = []
    plans: Plans = []
    async with inner.pool.connection() as conn:
        await call(RecordingReader(PostgresReader(conn), seen))
        for sql, params in seen:
            rows = await conn.fetch("EXPLAIN " + numbered(sql), *params)
            plans.append({"sql": sql, "params": [str(p)[:MAX_VALUE_CHARS] for p in params],
                          "plan": [row[0] for row in rows]})  # fmt: skip
    return plans
