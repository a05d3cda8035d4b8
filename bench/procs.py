"""Start, health-check and stop the server processes the bench measures.

Why: a benchmark that leaves servers behind poisons the next run (and the machine). Each
server is started in its own session so that stopping it reaches its worker processes too,
and it is always stopped by the process-group id of the process we started, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from reelsearch import compiled


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server subprocess, with its output in ``log_path``; usable as a context manager."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: stop() reaches its workers
            )

    def wait_healthy(
        self, url: str, timeout_s: float, headers: Mapping[str, str] | None = None
    ) -> float:
        """Poll ``url`` until it answers 200; return the seconds waited. Raise if it dies."""
        start = time.perf_counter()
        deadline = start + timeout_s
        with httpx.Client(timeout=2.0, headers=dict(headers or {})) as client:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited early; see {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - start
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    raise TimeoutError(
                        f"{self.name} not healthy at {url} after {timeout_s}s; "
                        f"see {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after ``grace_s``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session=True makes the child its group's leader
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace_s)
                # the leader is gone; make sure its workers are too
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.wait(timeout=grace_s)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


REELSEARCH_CMD = "reelsearch serve --host {host} --port {port} --workers {workers}"


@contextlib.contextmanager
def reelsearch_server(
    name: str,
    database_url: str,
    workdir: Path,
    *,
    workers: int = 2,
    cmd: str = REELSEARCH_CMD,
    env: Mapping[str, str] | None = None,
    startup_timeout_s: float = 60.0,
    host: str = "127.0.0.1",
) -> Iterator[tuple[str, float]]:
    """Run ``reelsearch serve`` on ``database_url``; yield (base URL, seconds until ready).

    ``cmd`` gets ``{host} {port} {workers} {db}`` filled in ({db}: the URL). ``env`` is added
    to this process's environment (pool settings, for example). Ready means ``/ready`` says
    200: the catalog answers, not merely the HTTP stack. The log is ``workdir/<name>.log``.
    """
    port = free_port(host)
    argv = shlex.split(cmd.format(host=host, port=port, workers=workers, db=database_url))
    # Cold figures stay cold: the result cache is off unless the caller's environment or
    # ``env`` turns it on (bench/zipf_load.py measures it).
    full_env = {"REELSEARCH_CACHE": "off", **os.environ, **(env or {}),
                "REELSEARCH_DATABASE_URL": database_url}  # fmt: skip
    proc = ServerProcess(name, argv, workdir / f"{name}.log", full_env)
    base_url = f"http://{host}:{port}"
    try:
        proc.start()
        yield base_url, proc.wait_healthy(f"{base_url}/ready", startup_timeout_s)
    finally:
        proc.stop()


def code_version() -> str:
    """The commit the servers run, whether ``src/`` had uncommitted changes then, and whether
    the search modules run compiled (in this environment, the servers' as the bench starts them)."""
    repo = Path(__file__).resolve().parent.parent

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain", "--", "src").splitlines() if line]
    version = f"commit {commit}" + (
        f" + {len(changed)} uncommitted files in src/" if changed else ""
    )
    return f"{version}; {compiled.describe()}"
