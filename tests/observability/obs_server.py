"""A real ``reelsearch serve`` (granian, worker processes) on a loopback port, for these tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson

# This session's ports for servers started by hand or by tests: 8500-8599.
FIRST_PORT, LAST_PORT = 8540, 8599


def free_port() -> int:
    """A port of our range that nothing listens on now."""
    for port in range(FIRST_PORT, LAST_PORT + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {FIRST_PORT}-{LAST_PORT}")


@contextmanager
def served(database_url: str, log: Path, *, workers: int = 2, **env: str) -> Iterator[str]:
    """``reelsearch serve`` on a free port, JSON logs to ``log``; yields its base URL."""
    port = free_port()
    environ = {
        **os.environ,
        "REELSEARCH_DATABASE_URL": database_url,
        "REELSEARCH_LOG_FORMAT": "json",
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reelsearch",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    log.with_suffix(".pid").write_text(str(proc.pid))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def json_lines(log: Path) -> list[dict[str, object]]:
    """The JSON log lines of a log file (granian's own plain lines left out)."""
    lines = []
    for line in log.read_bytes().splitlines():
        if line.startswith(b"{"):
            lines.append(orjson.loads(line))
    return lines
