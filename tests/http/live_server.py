"""A real ``reelsearch serve`` subprocess on a free loopback port, for end-to-end tests.

The server runs in its own session (process group) so that stopping it reaches
its workers too; it is stopped by the id of the process the test started.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from child_processes import environ_without_settings, free_port

_WORKER_LINE = re.compile(r"Spawning worker-(\d+) with PID: (\d+)")


class LiveServer:
    """``reelsearch serve`` with its output in ``log_path``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> dict[int, int]:
        """The latest process id of each worker (1-based), as granian logged it."""
        return {int(n): int(pid) for n, pid in _WORKER_LINE.findall(self.log())}

    def wait_until(self, is_done: object, timeout: float, what: str) -> None:
        """Poll ``is_done()`` every 50 ms until true; fail naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not is_done():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout} s; log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def is_healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False


def serve_command(database_url: str, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "reelsearch", "--database-url", database_url, "serve",
            "--port", str(port), "--workers", str(workers)]  # fmt: skip


@contextlib.contextmanager
def live_server(
    database_url: str,
    log_path: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[LiveServer]:
    """Start the server, wait until /health answers, and stop it (SIGTERM, then SIGKILL)."""
    port = free_port()
    environ = environ_without_settings()
    environ.update(env or {})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            serve_command(database_url, port, workers),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
    server = LiveServer(proc, port, log_path)
    try:
        server.wait_until(
            lambda: proc.poll() is not None or server.is_healthy(), startup_timeout, "healthy"
        )
        assert proc.poll() is None, f"the server exited at start:\n{server.log()}"
        yield server
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # workers left behind, if any
        os.killpg(proc.pid, signal.SIGKILL)
