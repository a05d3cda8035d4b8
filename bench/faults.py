"""Faults under load against a real `reelsearch serve --workers 2`: what failed, for how long.

Each fault runs on a fresh server (its own process group, loopback port) under
the closed-loop load of bench/faultload.py: ``--warmup`` seconds (not counted),
``--before`` seconds of normal load,
the fault, the fault undone, ``--after`` seconds more. Then a fresh request on
every load path must give the answer it gave before the load started.

- ``kill-worker``: ``kill -9`` of worker-1 (granian respawns it).
- ``postgres``: the server on PostgreSQL; a fast stop of the *private* cluster
  (``--pg-data``, port ``--pg-port``), ``--outage`` seconds down, start again.
- ``redis``: the server with the rate limiter in a *private* Redis (``--redis-port``,
  a limit no client reaches, so every request asks Redis); SIGTERM it, restart it.
- ``redis-pause``: the same Redis stopped with SIGSTOP (it hangs rather than refuses), then
  SIGCONT.
- ``hostile``: ``--hostile-clients`` clients send the adversarial queries of issue 10
  for ``--outage`` seconds beside the normal load; their answers are counted too.
- ``slow-clients``: ``--slow`` connections that send half a request head and stop,
  held for ``--outage`` seconds, then closed.

Never touches the shared PostgreSQL (5432) or Redis (6379): the private ones are
named by the caller and refused if they are the shared ports.

    python bench/faults.py --db /tmp/faults/sample.db --pg-url \
        postgresql+asyncpg://postgres@127.0.0.1:5440/sample --pg-data /tmp/faults-pg \
        --redis-port 6390 --port 8820 all
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from faultload import HEADERS, LOAD_PATHS, FaultReport, Load, analyse, reference_answers
from mdtable import markdown_table
from procs import ServerProcess

SHARED_PORTS = {5432, 6379}
PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"
_WORKER_LINE = re.compile(r"Spawning worker-(\d+) with PID: (\d+)")

# Issue 10's adversarial set, and others of the same kinds: raw query strings.
HOSTILE = (
    "q=" + quote("\ufdfa" * 256),  # 256 code points that normalize into 1,024 words
    "q=" + quote("\ufdfa" * 40),
    "q=" + "a" * 512,  # a 512-letter word (typo search of every deletion)
    "q=" + "b" * 255,
    "q=" + "x" * 300,  # over the 256-character limit
    "q=" + "a" * 9000,  # over the 8 KiB query-string limit
    "q=" + "+".join(["the"] * 80),  # many stop words
    "q=" + "+".join(["love"] * 60),  # a common word repeated
    "q=" + "+".join("abcdefghijklmnopqrstuvwxyz" * 4),  # 104 one-letter words
    "q=" + quote("\ufb03" * 200),  # ligatures that expand under NFKD
    "q=" + quote("\u6c34\u706b\u98a8\u96f7" * 50),  # a script without spaces
    "q=" + quote("\ud55c" * 200),  # Hangul syllables: 3 jamo each
    "q=%zz",  # bad percent-encoding
    "q=%E2%82",  # truncated UTF-8
    "q=star&offset=10000&limit=100",  # the deepest page
    "q=a&offset=99999999999999999999999",
    "q=&sort=-votes&offset=9990&limit=100&facets=genres,decade",  # broad, deep, faceted
    "q=" + quote('"' * 100 + "-" * 100),
)


async def _wait(what: str, is_done: Callable[[], bool], seconds: float = 60.0) -> float:
    deadline = time.monotonic() + seconds
    while not is_done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)
    return time.monotonic()


def _accepts(port: int) -> bool:
    """True once PostgreSQL on ``port`` answers a query (not merely the port)."""
    import psycopg

    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=1):
            return True
    except psycopg.Error:
        return False


def _redis_up(port: int) -> bool:
    done = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
    return done.stdout.strip() == "PONG"


def _start_redis(port: int, pidfile: Path) -> None:
    subprocess.run(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(pidfile)],  # fmt: skip
        check=True,
        capture_output=True,
    )


def _pg_ctl(data: Path, port: int, *action: str) -> None:
    argv = [PG_CTL, "-D", str(data), "-w", *action]
    if action[0] == "start":
        argv += ["-o", f"-p {port} -k /tmp", "-l", f"{data}.log"]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


class Scenario:
    """A fault: ``inject`` it, ``undo`` it (returns when the service behind is back)."""

    def __init__(self, args: argparse.Namespace, server: ServerProcess, url: str) -> None:
        self.args, self.server, self.url = args, server, url
        self.note = ""

    async def inject(self) -> None:
        raise NotImplementedError

    async def undo(self) -> None:
        await asyncio.sleep(self.args.outage)

    async def finish(self) -> None:
        """After the load: anything to check on the service behind (notes only)."""


class KillWorker(Scenario):
    async def inject(self) -> None:
        pids = dict(_WORKER_LINE.findall(self.server.log_tail(10_000)))
        os.kill(int(pids["1"]), signal.SIGKILL)

    async def undo(self) -> None:
        started = time.monotonic()
        await _wait("the replacement", lambda: "Respawning worker-1" in self.server.log_tail(50))
        self.note = f"replacement logged {time.monotonic() - started:.2f} s after the kill"


class RestartPostgres(Scenario):
    async def inject(self) -> None:
        await asyncio.to_thread(_pg_ctl, self.args.pg_data, self.args.pg_port, "stop", "-m", "fast")

    async def undo(self) -> None:
        await asyncio.sleep(self.args.outage)
        await asyncio.to_thread(_pg_ctl, self.args.pg_data, self.args.pg_port, "start")
        await _wait("PostgreSQL back", lambda: _accepts(self.args.pg_port))

    async def finish(self) -> None:
        import psycopg

        dsn = f"postgresql://postgres@127.0.0.1:{self.args.pg_port}/postgres"
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reelsearch'"
            ).fetchone()
        self.note += f"; server-side connections after the load: {row[0] if row else '?'}"


class RestartRedis(Scenario):
    async def inject(self) -> None:
        pid = int(self.args.redis_pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        await _wait("Redis stopped", lambda: not _redis_up(self.args.redis_port))

    async def undo(self) -> None:
        await asyncio.sleep(self.args.outage)
        _start_redis(self.args.redis_port, self.args.redis_pidfile)
        await _wait("Redis back", lambda: _redis_up(self.args.redis_port))


class PauseRedis(Scenario):
    """Redis hangs (SIGSTOP) instead of dying: requests wait for the client's timeouts."""

    async def inject(self) -> None:
        os.kill(int(self.args.redis_pidfile.read_text()), signal.SIGSTOP)

    async def undo(self) -> None:
        await asyncio.sleep(self.args.outage)
        os.kill(int(self.args.redis_pidfile.read_text()), signal.SIGCONT)
        await _wait("Redis answering", lambda: _redis_up(self.args.redis_port))


class HostileBurst(Scenario):
    async def inject(self) -> None:
        self.statuses: dict[int, int] = {}
        self.slowest = 0.0
        ends = time.monotonic() + self.args.outage

        async def client(n: int) -> None:
            async with httpx.AsyncClient(base_url=self.url, timeout=60.0) as http:
                i = n
                while time.monotonic() < ends:
                    sent = time.monotonic()
                    try:
                        path = "/v1/search?" + HOSTILE[i % len(HOSTILE)]
                        status = (await http.get(path)).status_code
                    except httpx.HTTPError:
                        status = 0
                    self.slowest = max(self.slowest, time.monotonic() - sent)
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    i += 1

        self.task = asyncio.gather(*(client(n) for n in range(self.args.hostile_clients)))

    async def undo(self) -> None:
        await self.task
        codes = ", ".join(f"{code or 'none'}: {n}" for code, n in sorted(self.statuses.items()))
        self.note = f"hostile answers {codes}; slowest {self.slowest:.2f} s"


class SlowClients(Scenario):
    HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

    async def inject(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

        async def one() -> None:
            _, writer = await asyncio.open_connection("127.0.0.1", self.args.port)
            writer.write(self.HEAD)
            await writer.drain()
            self.writers.append(writer)

        for _ in range(0, self.args.slow, 256):
            await asyncio.gather(*(one() for _ in range(256)), return_exceptions=True)

    async def undo(self) -> None:
        await asyncio.sleep(self.args.outage)
        self.note = f"{len(self.writers)} slow connections held {self.args.outage:.0f} s"
        for writer in self.writers:
            writer.close()


SCENARIOS: dict[str, type[Scenario]] = {
    "kill-worker": KillWorker,
    "postgres": RestartPostgres,
    "redis": RestartRedis,
    "redis-pause": PauseRedis,
    "hostile": HostileBurst,
    "slow-clients": SlowClients,
}


def _server(args: argparse.Namespace, name: str, workdir: Path) -> ServerProcess:
    database = args.pg_url if name == "postgres" else f"sqlite:///{args.db}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSEARCH_")}
    if name.startswith("redis"):
        # A limit nobody reaches: every request asks Redis, none is refused.
        env["REELSEARCH_REDIS_URL"] = f"redis://127.0.0.1:{args.redis_port}/0"
        env["REELSEARCH_RATE_LIMIT"] = env["REELSEARCH_RATE_LIMIT_BURST"] = "1000000"
    argv = [sys.executable, "-m", "reelsearch", "--database-url", database, "serve",
            "--port", str(args.port), "--workers", "2"]  # fmt: skip
    return ServerProcess(name, argv, workdir / f"{name}.log", env)


async def run_one(args: argparse.Namespace, name: str, workdir: Path) -> FaultReport:
    server = _server(args, name, workdir)
    url = f"http://127.0.0.1:{args.port}"
    with server:
        await asyncio.to_thread(server.wait_healthy, url + "/ready", 60)
        reference = await reference_answers(url, LOAD_PATHS)
        load = Load(url, LOAD_PATHS, reference, clients=args.clients)
        scenario = SCENARIOS[name](args, server, url)
        running = asyncio.create_task(
            load.run(args.warmup + args.before + args.outage + args.after + 90)
        )
        # The first seconds of a fresh server are slower (lazy per-worker state):
        # they are load, but not the "before" p99 the recovery is judged against.
        await asyncio.sleep(args.warmup)
        measured_from = time.monotonic()
        await asyncio.sleep(args.before)
        fault_at = time.monotonic()
        await scenario.inject()
        await scenario.undo()
        undone_at = time.monotonic()
        await asyncio.sleep(args.after)
        load.stop()
        await running
        await scenario.finish()
        after = await reference_answers(url, LOAD_PATHS)
        return analyse(
            name,
            [o for o in load.outcomes if o.sent >= measured_from],
            fault_at,
            undone_at,
            after_ok=after == reference,
            note=f"undone {undone_at - fault_at:.1f} s after the fault; {scenario.note}",
        )


async def main_async(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="faults-"))
    names = list(SCENARIOS) if args.fault == "all" else [args.fault]
    reports: list[FaultReport] = []
    for name in names:
        report = await run_one(args, name, workdir)
        print(markdown_table(HEADERS, [report.row()]), f"\n{report.note}", flush=True)
        print(f"per second (start: requests/failed/p99 ms): {report.timeline_text()}\n")
        reports.append(report)
    print(markdown_table(HEADERS, [r.row() for r in reports]))
    for r in reports:
        print(f"- {r.name}: {r.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fault", choices=[*SCENARIOS, "all"])
    parser.add_argument("--db", type=Path, required=True, help="the SQLite sample catalog")
    parser.add_argument("--port", type=int, default=8820)
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5440/sample")
    parser.add_argument("--pg-data", type=Path, default=Path("/tmp/faults-pg"))
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--redis-pidfile", type=Path, default=Path("/tmp/faults/redis6390.pid"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load not counted")
    parser.add_argument("--before", type=float, default=4.0)
    parser.add_argument("--outage", type=float, default=3.0)
    parser.add_argument("--after", type=float, default=8.0)
    parser.add_argument("--hostile-clients", type=int, default=4)
    parser.add_argument("--slow", type=int, default=6144, help="below the 8,192 lock-out")
    args = parser.parse_args()
    args.pg_port = int(re.search(r":(\d+)/", args.pg_url).group(1))  # type: ignore[union-attr]
    if {args.pg_port, args.redis_port} & SHARED_PORTS:
        parser.error("the PostgreSQL and Redis faults need private servers, not 5432/6379")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
