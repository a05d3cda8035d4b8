"""/ready: each dependency's state and reason; 503 when a required one is down.

Real dependencies only: the local Redis (database 9), a dead port for a
stopped one, and a private redis-server the test stops and starts again; a
PostgreSQL catalog made unreachable by refusing connections to its database
(the shared server keeps running); a SQLite catalog whose schema is behind the
code's migrations.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from child_processes import free_port
from redis_port import REDIS_HOST, REDIS_PORT, redis_url
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.http import create_app
from reelsearch.observability.readiness import SCHEMA_HEAD, migrations_head

LIVE_REDIS = redis_url(9)
# /ready's details are for the admin token (or configured addresses).
TOKEN = "observe-admin-token-" * 2
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# Nothing listens on port 1 of the loopback: a stopped Redis.
DEAD_REDIS = "redis://127.0.0.1:1/9"


@pytest.fixture
def client_for() -> Iterator[Callable[[Settings], TestClient]]:
    clients: list[TestClient] = []

    def start(settings: Settings) -> TestClient:
        app = create_app(replace(settings, admin_token=TOKEN))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def _redis_problem() -> str | None:
    """Why the local Redis can't be used, or None if it can."""
    import socket

    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2).close()
    except OSError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable: {exc}"
    return None


@pytest.mark.redis
def test_written_schema_head_is_alembics_head() -> None:
    """The revision /ready requires, written out, is the newest migration alembic finds."""
    assert SCHEMA_HEAD == migrations_head() == "0008"


def test_live_redis_is_reported_up(
    small_settings: Settings, client_for: Callable[..., TestClient]
) -> None:
    """With REELSEARCH_REDIS_URL set and Redis answering, redis is listed as up."""
    problem = _redis_problem()
    if problem is not None:  # CI must test it for real; elsewhere say why it did not run
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    client = client_for(replace(small_settings, redis_url=LIVE_REDIS))
    response = client.get("/ready", headers=ADMIN)
    assert (response.status_code, response.json()["dependencies"]["redis"]) == (
        200,
        {"state": "up", "required": False, "reason": "ok"},
    )


def test_stopped_redis_is_reported_down_with_the_reason(
    small_settings: Settings, client_for: Callable[..., TestClient]
) -> None:
    """A Redis nobody listens for is down, with the connection error as the reason; the
    service still serves (the cache falls through without Redis), so /ready stays 200."""
    client = client_for(replace(small_settings, redis_url=DEAD_REDIS))
    response = client.get("/ready", headers=ADMIN)
    redis = response.json()["dependencies"]["redis"]
    assert (response.status_code, response.json()["status"], redis["state"], redis["required"]) == (
        200,
        "ready",
        "down",
        False,
    )
    assert "Connect" in redis["reason"] and "refused" in redis["reason"].lower(), redis


def test_schema_behind_the_code_is_not_ready(
    small_copy: Settings, client_for: Callable[..., TestClient]
) -> None:
    """A catalog whose migrations are behind this code answers 503 and names both revisions."""
    client = client_for(small_copy)
    assert client.get("/ready", headers=ADMIN).status_code == 200
    with sqlite3.connect(small_copy.sqlite_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'older'")
    conn.close()
    response = client.get("/ready", headers=ADMIN)
    reason = (
        f"schema at revision older, this code needs {migrations_head()}: "
        "run `reelsearch upgrade` (or an import)"
    )
    assert (503, "not_ready", f"not ready: migrations: {reason}") == (
        response.status_code,
        response.json()["error"]["code"],
        response.json()["error"]["message"],
    )
    # Without the token: which dependency, not why (a reason may name a host).
    outsider = client.get("/ready").json()["error"]["message"]
    assert outsider == "not ready: migrations is down"
    assert response.headers["retry-after"] == "2"


@pytest.mark.postgres
def test_unreachable_database_is_not_ready_then_recovers(
    postgres_databases: Callable[[str], str],
    imdb_writer: Callable[[], dict[str, Path]],
    client_for: Callable[..., TestClient],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """While the catalog database refuses connections, /ready is 503 with catalog and
    migrations down and why; once it accepts them again, 200. The failure and the
    recovery are logged once each, however often /ready is asked meanwhile."""
    settings = Settings(
        database_url=postgres_databases("ready"), log_format="json", access_log=False
    )
    import_imdb(settings, list(imdb_writer().values()))  # the small catalog
    database = settings.database_url.rsplit("/", 1)[1]
    admin = settings.postgres_dsn.rsplit("/", 1)[0] + "/postgres"
    client = client_for(settings)
    assert client.get("/ready", headers=ADMIN).status_code == 200

    def allow_connections(allowed: bool) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
            if not allowed:  # and drop the pool's open connections
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (database,),
                )

    allow_connections(False)
    try:
        down = [client.get("/ready", headers=ADMIN) for _ in range(3)]
    finally:
        allow_connections(True)
    assert [r.status_code for r in down] == [503, 503, 503]
    message = down[-1].json()["error"]["message"]
    assert message.startswith("not ready: catalog: ") and "; migrations: " in message, message
    assert "not currently accepting connections" in message, message
    deadline = time.monotonic() + 15
    while (
        up := client.get("/ready", headers=ADMIN)
    ).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (up.status_code, up.json()["status"]) == (200, "ready")
    logged = [line for line in capsys.readouterr().err.splitlines() if "reelsearch.ready" in line]
    assert [
        sum("dependency catalog is down" in line for line in logged),
        sum("dependency catalog recovered" in line for line in logged),
    ] == [1, 1], logged


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    """A private redis-server of this test's own (nothing saved), answering PING."""
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)


def test_redis_stopped_while_serving_is_reported_down_then_up(
    small_settings: Settings,
    client_for: Callable[..., TestClient],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Redis that answered and is then stopped (a private redis-server of this test,
    stopped by its pid) shows as down with the reason while the service stays ready;
    started again on the same port, up. Down and recovered are logged once each."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = _start_redis(port)
    try:
        settings = replace(small_settings, redis_url=f"redis://127.0.0.1:{port}/0",
                           log_format="json", access_log=False)  # fmt: skip
        client = client_for(settings)
        first = client.get("/ready", headers=ADMIN).json()["dependencies"]["redis"]
        server.terminate()
        server.wait(10)
        stopped = [client.get("/ready", headers=ADMIN) for _ in range(3)]
        server = _start_redis(port)
        deadline = time.monotonic() + 15
        while (again := client.get("/ready", headers=ADMIN).json()["dependencies"]["redis"])[
            "state"
        ] != "up" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(10)
    assert first == {"state": "up", "required": False, "reason": "ok"}
    assert [(r.status_code, r.json()["status"]) for r in stopped] == [(200, "ready")] * 3
    down = stopped[-1].json()["dependencies"]["redis"]
    assert down["state"] == "down" and "refused" in down["reason"].lower(), down
    assert again == first
    logged = [line for line in capsys.readouterr().err.splitlines() if "reelsearch.ready" in line]
    assert [
        sum("dependency redis is down" in line for line in logged),
        sum("dependency redis recovered" in line for line in logged),
    ] == [1, 1], logged
