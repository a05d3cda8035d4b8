"""Hello-world throughput/latency of ASGI frameworks on granian and uvicorn, measured with wrk.

Each round starts every case's server (one at a time, in shuffled order) on a free loopback port,
checks the response, warms up, runs ``wrk --latency`` once per concurrency and stops the server.
Rounds interleave the cases so that machine noise hits them alike; the tables report the median
over rounds and, for ratios, the median of the per-round ratios (paired, side by side).
"CPU µs/req" is the user+system CPU time the server's processes spent per request served: on a
shared, noisy machine it is steadier than req/s, which depends on how much CPU the server got.

    python bench/framework/run.py --duration 3 --runs 4 --concurrency 16 64
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # granian/uvicorn from the same venv as this interpreter
EXPECTED_BODY = b'{"status":"ok"}'
TICK = os.sysconf("SC_CLK_TCK")
PACKAGES = (
    "starlette",
    "litestar",
    "fastapi",
    "granian",
    "uvicorn",
    "uvloop",
    "httptools",
    "orjson",
)


# --- servers ----------------------------------------------------------------------------------

GRANIAN_FLAGS = {  # server config name -> flags after `granian --interface asgi`
    "granian": [],  # defaults: --loop auto (= uvloop when installed), --http auto
    "granian-h1": ["--loop", "uvloop", "--http", "1"],
    "granian-asyncio": ["--loop", "asyncio", "--http", "1"],
}
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]


def server_argv(server: str, app: str, port: int, workers: int) -> list[str]:
    common = f"--host 127.0.0.1 --port {port} --workers {workers} --log-level warning".split()
    if server in GRANIAN_FLAGS:
        granian = [str(BIN / "granian"), "--interface", "asgi"]
        return [*granian, *common, *GRANIAN_FLAGS[server], f"apps:{app}"]
    if server == "uvicorn":
        return [str(BIN / "uvicorn"), *common, *UVICORN_FLAGS, f"apps:{app}"]
    raise ValueError(f"unknown server {server!r}")


@dataclass(frozen=True, order=True)
class Case:
    app: str
    server: str
    workers: int = 1

    def __str__(self) -> str:
        return f"{self.app}@{self.server}x{self.workers}"


@dataclass(frozen=True)
class Table:
    title: str
    rows: list[Case]
    base: Callable[[Case], Case]  # the case each row's req/s is divided by (same round)
    base_label: str


CHOSEN = "granian-h1"  # server config for the middleware and worker tables
FRAMEWORKS = ("raw", "starlette", "litestar", "fastapi")
TABLES = {
    "frameworks": Table(
        "Frameworks × servers (1 worker)",
        [Case(a, s) for s in ("granian", "granian-h1", "uvicorn") for a in FRAMEWORKS],
        lambda c: Case("raw", c.server, c.workers),
        "× raw",
    ),
    "loop": Table(
        "granian event loop (Starlette, --http 1, 1 worker)",
        [Case(a, s) for s in ("granian-h1", "granian-asyncio") for a in ("raw", "starlette")],
        lambda c: Case(c.app, "granian-h1"),
        "× uvloop",
    ),
    "middleware": Table(
        f"Starlette middleware stacks ({CHOSEN}, 1 worker)",
        [Case(a, CHOSEN) for a in ("starlette", "starlette_mw_asgi", "starlette_mw_base")],
        lambda c: Case("starlette", CHOSEN),
        "× none",
    ),
    "workers": Table(
        f"granian workers (Starlette, {CHOSEN}; wrk shares the same 2 cores)",
        [Case("starlette", CHOSEN, w) for w in (1, 2)],
        lambda c: Case("starlette", CHOSEN, 1),
        "× 1 worker",
    ),
}


# --- one server, one wrk run -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(root: int) -> float:
    """User+system CPU time of ``root`` and its descendants (granian workers), from /proc."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (ppid, cpu seconds)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        stats[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    todo, total = [root], 0.0
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                body = resp.read()
                if resp.status != 200 or body != EXPECTED_BODY:
                    raise RuntimeError(f"bad response {resp.status} {body!r}")
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server we started, then SIGKILL its own process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # workers left over; the group is ours
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(out: str) -> dict[str, float]:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, f"no {pct}% line in wrk output:\n{out}"
        return float(m[1]) * UNITS[m[2]]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    assert rps, f"no Requests/sec in wrk output:\n{out}"
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx[1]) if non2xx else 0
    requests = re.search(r"^\s+(\d+) requests in", out, re.M)
    assert requests, f"no request count in wrk output:\n{out}"
    return {
        "rps": float(rps[1]),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": errors,
        "requests": int(requests[1]),
    }


def wrk(url: str, connections: int, seconds: int, threads: int) -> dict[str, float]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(done.stdout)


Sample = dict[str, float]
Results = dict[tuple[Case, int], list[Sample]]  # (case, concurrency) -> one sample per round


def measure(case: Case, args: argparse.Namespace, logdir: Path, results: Results) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    argv = server_argv(case.server, case.app, port, case.workers)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    logfile = logdir / f"{case}.log"
    with logfile.open("ab") as log:
        proc = subprocess.Popen(
            argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_ready(url, proc)
            wrk(url, max(args.concurrency), args.warmup, args.threads)  # warm-up, discarded
            for c in args.concurrency:
                cpu = cpu_seconds(proc.pid)
                sample = wrk(url, c, args.duration, args.threads)
                sample["cpu_us"] = (cpu_seconds(proc.pid) - cpu) * 1e6 / sample["requests"]
                results.setdefault((case, c), []).append(sample)
                print(
                    f"  {str(case):<34} c={c:<4} {sample['rps']:>9.0f} req/s "
                    f"p50 {sample['p50']:.2f} ms  p99 {sample['p99']:.2f} ms  "
                    f"server CPU {sample['cpu_us']:.0f} us/req",
                    flush=True,
                )
        except Exception:
            log.flush()
            print(
                f"{case} failed; server log tail:\n{logfile.read_text()[-2000:]}", file=sys.stderr
            )
            raise
        finally:
            stop(proc)


# --- report ------------------------------------------------------------------------------------


def render(table: Table, results: Results, concurrencies: list[int]) -> str:
    cols = ["app", "server", "workers", "conc", "req/s", "spread", "p50 ms", "p99 ms"]
    cols += [table.base_label, "CPU µs/req", "errors"]
    lines = [
        f"### {table.title}",
        "",
        "| " + " | ".join(cols) + " |",
        "|---|---|" + "--:|" * (len(cols) - 2),
    ]
    for c in concurrencies:
        for case in table.rows:
            samples, base = results[(case, c)], results[(table.base(case), c)]
            rps = [s["rps"] for s in samples]
            med = statistics.median(rps)
            pairs = zip(samples, base, strict=True)
            ratio = statistics.median(s["rps"] / b["rps"] for s, b in pairs)
            lines.append(
                f"| {case.app} | {case.server} | {case.workers} | {c} | {med:,.0f} "
                f"| ±{(max(rps) - min(rps)) / 2 / med:.0%} "
                f"| {statistics.median(s['p50'] for s in samples):.2f} "
                f"| {statistics.median(s['p99'] for s in samples):.2f} "
                f"| {ratio:.2f} | {statistics.median(s['cpu_us'] for s in samples):.0f} "
                f"| {int(sum(s['errors'] for s in samples))} |"
            )
    return "\n".join(lines) + "\n"


def header(argv: list[str]) -> str:
    versions = ", ".join(f"{p} {version(p)}" for p in PACKAGES)
    return (
        f"Command: `python bench/framework/run.py {shlex.join(argv)}`  \n"
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {versions}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=4, help="rounds (median reported)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of discarded wrk load")
    parser.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--seed", type=int, default=1, help="shuffle seed for the case order")
    parser.add_argument("--json", type=Path, help="also write every raw sample here")
    args = parser.parse_args(argv)
    args.concurrency = sorted(args.concurrency)
    argv = sys.argv[1:] if argv is None else argv

    tables = [TABLES[t] for t in args.tables]
    cases = sorted({c for t in tables for row in t.rows for c in (row, t.base(row))})
    per_round = len(cases) * (1.5 + args.warmup + args.duration * len(args.concurrency))
    print(
        f"{len(cases)} cases × {args.runs} rounds ≈ {per_round * args.runs / 60:.1f} min",
        flush=True,
    )
    results: Results = {}
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="fwbench-") as logdir:
        for r in range(args.runs):
            print(f"round {r + 1}/{args.runs}", flush=True)
            for case in rng.sample(cases, len(cases)):
                measure(case, args, Path(logdir), results)

    report = header(argv) + "\n" + "\n".join(render(t, results, args.concurrency) for t in tables)
    print("\n" + report)
    if args.json:
        raw = [{"case": str(k[0]), "concurrency": k[1], "samples": v} for k, v in results.items()]
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
