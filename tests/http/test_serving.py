"""``reelsearch serve`` as a process: killed workers are replaced, a taken port is refused.

Real servers (granian, worker processes) on loopback ports; nothing is mocked.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from live_server import free_port, live_server, serve_command

from reelsearch.errors import AddressInUse
from reelsearch.serving import check_address_free

# Requests sent this soon after a worker is killed may fail (see the test).
ERROR_WINDOW_S = 0.5
CLOSE = {"Connection": "close"}


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still has a pid; it is dead for our purpose.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_killed_worker_is_replaced_and_the_server_keeps_answering(
    small_db: Path, tmp_path: Path
) -> None:
    """kill -9 of one of 2 workers: every later request is answered and a new worker runs;
    a replacement that dies again at once (a crash loop) ends the server with status 1."""
    with live_server(f"sqlite:///{small_db}", tmp_path / "serve.log", workers=2) as server:
        first = server.worker_pids()
        assert [1, 2] == sorted(first)
        killed = time.monotonic()
        os.kill(first[1], signal.SIGKILL)
        answers: list[tuple[float, int | str]] = []
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < killed + 2.0:
                sent = time.monotonic() - killed
                try:
                    # A new connection each time: the replacement must accept too.
                    answer = client.get(server.url + "/health", headers={"Connection": "close"})
                    answers.append((sent, answer.status_code))
                except httpx.TransportError as exc:
                    answers.append((sent, type(exc).__name__))
        # granian's workers each listen on their own SO_REUSEPORT socket: connections
        # the kernel gave the dying one are refused or reset until it is gone (unless
        # net.ipv4.tcp_migrate_req=1). Past that instant every request is answered.
        late = [outcome for sent, outcome in answers if sent >= ERROR_WINDOW_S]
        assert len(late) > 10 and {200} == set(late), answers
        server.wait_until(lambda: server.worker_pids()[1] != first[1], 10, "worker-1 replaced")
        second = server.worker_pids()
        assert first[2] == second[2] and _is_alive(second[1]) and _is_alive(second[2])
        assert not _is_alive(first[1])
        assert 200 == httpx.get(server.url + "/v1/search?q=matrix").status_code
        assert None is server.proc.poll()

        # Dying again within granian's crash-loop window (5.5 s) is a failure at start.
        os.kill(second[1], signal.SIGKILL)
        assert 1 == server.proc.wait(timeout=30)
        assert "Worker crash loop detected, exiting" in server.log()


def test_sigterm_stops_every_worker_and_exits_0(small_db: Path, tmp_path: Path) -> None:
    """SIGTERM is a graceful stop: status 0, and no worker outlives the server."""
    with live_server(f"sqlite:///{small_db}", tmp_path / "serve.log", workers=2) as server:
        # Ready means one worker answers; a stop while the other is still starting is
        # another case (granian kills that one after the shutdown timeout): wait for both.
        server.wait_until(
            lambda: all(f"Started worker-{n}" in server.log() for n in (1, 2)), 30, "both started"
        )
        workers = server.worker_pids()
        server.proc.send_signal(signal.SIGTERM)
        assert 0 == server.proc.wait(timeout=30)
        server.wait_until(
            lambda: not any(_is_alive(pid) for pid in workers.values()), 5, "workers gone"
        )


def test_a_second_serve_on_a_taken_port_fails_clearly(small_db: Path, tmp_path: Path) -> None:
    """A second `serve` on the port of a running server exits 1 naming the address,
    instead of sharing the port through SO_REUSEPORT; the first keeps serving."""
    url = f"sqlite:///{small_db}"
    with live_server(url, tmp_path / "serve.log") as server:
        second = subprocess.run(
            serve_command(url, server.port, 1), capture_output=True, text=True, timeout=60
        )
        assert 1 == second.returncode
        assert (
            f"reelsearch: 127.0.0.1:{server.port} is already in use by another process; "
            "stop it or choose another port (--port or REELSEARCH_PORT)\n"
        ) == second.stderr
        assert server.is_healthy()


@pytest.mark.parametrize("reuse_port", [False, True])
def test_check_address_free_sees_any_listener(reuse_port: bool) -> None:
    """A listener holds its port for the check whether or not it set SO_REUSEPORT."""
    port = free_port()
    with socket.socket() as listener:
        if reuse_port:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with pytest.raises(AddressInUse, match=f"127.0.0.1:{port} is already in use"):
            check_address_free("127.0.0.1", port)
    check_address_free("127.0.0.1", port)  # free again once it is closed


def _serve_slow_app(port: int, shutdown_timeout: int, log: Path) -> subprocess.Popen[bytes]:
    """serving.serve() with the test's slow app, in its own process group."""
    code = ("from reelsearch.config import Settings; from reelsearch.serving import serve; "
            f"serve(Settings(port={port}, workers=1, shutdown_timeout={shutdown_timeout}), "
            "app_factory='slow_app:app')")  # fmt: skip
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)  # fmt: skip


def _wait_answering(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/slow", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within 30 s")


def _ask_a_worker(tmp_path: Path, path: str) -> dict[str, object]:
    """The JSON a worker of serving.serve() (the test's slow app) answers at ``path``;
    the server is stopped before this returns."""
    port = free_port()
    proc = _serve_slow_app(port, 5, tmp_path / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_answering(url)
        answer: dict[str, object] = httpx.get(url + path, timeout=10).json()
        return answer
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_workers_inherit_the_parents_objects_frozen(tmp_path: Path) -> None:
    """What the serving process loaded before granian forked a worker is out of the
    worker's collections (serving.freeze_before_fork): a full collection there would
    write to every inherited object and unshare its pages."""
    seen = _ask_a_worker(tmp_path, "/frozen")
    assert False is seen["serve_walked"]
    # The parent imported reelsearch.config and .serving: tens of thousands of objects.
    assert seen["frozen"] > 10_000, seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
@pytest.mark.parametrize(("environment", "arenas"), [(None, 1), ("4", 4)])
def test_worker_threads_allocate_from_one_malloc_arena(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: str | None, arenas: int
) -> None:
    """Threads of a worker that allocate at once share glibc's one arena
    (serving.one_malloc_arena), so what one frees serves the others; an operator's
    MALLOC_ARENA_MAX is left as set (4: the threads spread over four arenas)."""
    if environment is None:
        monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    else:
        monkeypatch.setenv("MALLOC_ARENA_MAX", environment)
    assert {"arenas": arenas} == _ask_a_worker(tmp_path, "/arenas")


@pytest.mark.parametrize(
    ("request_seconds", "shutdown_timeout", "answered"), [(2.0, 30, True), (20.0, 1, False)]
)
def test_sigterm_lets_requests_in_flight_finish_within_the_timeout(
    tmp_path: Path, request_seconds: float, shutdown_timeout: int, answered: bool
) -> None:
    """A request in flight when SIGTERM arrives is answered if it ends within
    REELSEARCH_SHUTDOWN_TIMEOUT; past it the worker is killed and the server still stops."""
    port = free_port()
    proc = _serve_slow_app(port, shutdown_timeout, tmp_path / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_answering(url)
        result: dict[str, object] = {}

        def ask() -> None:
            try:
                result["status"] = httpx.get(
                    f"{url}/slow?s={request_seconds}", timeout=60
                ).status_code
            except httpx.HTTPError as exc:
                result["error"] = type(exc).__name__

        asker = threading.Thread(target=ask)
        asker.start()
        time.sleep(0.5)  # the request is in flight
        stopping = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        asker.join(60)
        proc.wait(timeout=60)
        took = time.monotonic() - stopping
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    if answered:
        assert {"status": 200} == result
    else:
        assert "status" not in result, result
        assert took < request_seconds / 2, took  # killed at the timeout, not waited out


def test_sighup_replaces_workers_without_failing_requests(small_db: Path, tmp_path: Path) -> None:
    """SIGHUP reloads: a new worker starts before the old one stops gracefully, and every
    request sent meanwhile on a new connection is answered 200, but for at most one that
    the old worker's close cuts off (no status at all), whose retry is answered. (A new
    connection the kernel queued on the old worker's listening socket as it closed is
    reset: about 1 reload in 10 here. On a kept-alive connection a request can cross the
    old worker's close too: clients retry those, as for any server.)"""
    with live_server(f"sqlite:///{small_db}", tmp_path / "serve.log", workers=1) as server:
        old = server.worker_pids()[1]
        server.proc.send_signal(signal.SIGHUP)
        statuses: list[int] = []
        cut_off = 0
        with httpx.Client(timeout=5.0) as client:

            def ask() -> None:
                nonlocal cut_off
                try:
                    statuses.append(client.get(server.url + "/health", headers=CLOSE).status_code)
                except (httpx.RemoteProtocolError, httpx.ReadError):  # reset, no status
                    cut_off += 1
                    statuses.append(client.get(server.url + "/health", headers=CLOSE).status_code)

            ends = time.monotonic() + 8.0
            while time.monotonic() < ends and "Stopped old worker-1" not in server.log():
                ask()
            ask()
        assert "Stopped old worker-1" in server.log()
        assert len(statuses) > 10 and {200} == set(statuses)
        assert cut_off <= 1, cut_off
        assert old != server.worker_pids()[1] and not _is_alive(old)
