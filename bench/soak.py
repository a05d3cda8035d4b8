"""A long, steady load on `reelsearch serve`: do memory, file descriptors or sockets grow?

Starts ``reelsearch serve --workers N`` (its own process group, loopback),
measures its maximum throughput with wrk (``--calibrate`` seconds at c=16 over
the search paths of bench/faultload.py), then runs wrk at about ``--fraction``
of it for ``--seconds`` (each connection waits between requests: wrk's Lua
``delay()``, tuned once on a short trial run). Every ``--every`` seconds it
samples, for the main process and each worker: RSS and PSS (smaps_rollup), open
file descriptors and how many of them are sockets. Writes the samples as CSV
and a PNG of the curves, prints a summary. Bounded: wrk has a hard timeout and
the server is stopped by its process group whatever happens.

    python bench/soak.py --db /tmp/faults/sample.db --port 8810 --seconds 600 \
        --csv docs/soak-issue14.csv --png docs/soak-issue14.png
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from faultload import LOAD_PATHS
from load import Target, parse_wrk_output, run_wrk
from procs import ServerProcess

_WORKER_LINE = re.compile(r"Spawning worker-(\d+) with PID: (\d+)")
_PACED_LUA = """
local base = dofile("{paths_lua}")
local pause = {pause_ms}
function delay()
  return pause
end
"""


def process_sample(pid: int) -> tuple[int, int, int, int]:
    """(RSS KiB, PSS KiB, open fds, sockets) of one process; zeros if it is gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0, 0, 0, 0
    fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", rollup, re.M))
    sockets = 0
    for fd in fds:
        with contextlib.suppress(OSError):  # closed since the listing
            sockets += Path(fd).readlink().as_posix().startswith("socket:")
    return int(fields.get("Rss", 0)), int(fields.get("Pss", 0)), len(fds), sockets


def paced_lua(workdir: Path, pause_ms: float) -> Path:
    """bench/wrk/paths.lua plus a fixed pause before each request of a connection."""
    lua = Path(__file__).resolve().parent / "wrk" / "paths.lua"
    out = workdir / f"paced-{pause_ms:.2f}.lua"
    # paths.lua defines globals; loading it with dofile keeps one copy of the logic.
    out.write_text(_PACED_LUA.format(paths_lua=lua, pause_ms=max(0, round(pause_ms))))
    return out


def wrk_paced(url: str, paths: Path, lua: Path, connections: int, seconds: int) -> str:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout=10s", "--latency",
            "-s", str(lua), url, "--", str(paths), "2"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--port", type=int, default=8810)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--fraction", type=float, default=0.8)
    parser.add_argument("--calibrate", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    paths = workdir / "paths.txt"
    paths.write_text("\n".join(LOAD_PATHS) + "\n")
    url = f"http://127.0.0.1:{args.port}"
    server = ServerProcess(
        "soak",
        [sys.executable, "-m", "reelsearch", "--database-url", f"sqlite:///{args.db}",
         "serve", "--port", str(args.port), "--workers", str(args.workers)],  # fmt: skip
        workdir / "server.log",
    )
    samples: list[dict[str, float]] = []
    with server:
        server.wait_healthy(url + "/ready", 60)
        target = Target("search", url, paths)
        peak = run_wrk(target, 16, args.calibrate)
        wanted = peak.rps * args.fraction
        # rate = c / (pause + latency): one trial run gives the latency at this rate.
        pause = args.connections / wanted * 1000
        trial_lua = paced_lua(workdir, pause)
        trial = parse_wrk_output(wrk_paced(url, paths, trial_lua, args.connections, 5))
        latency_ms = args.connections / trial.rps * 1000 - pause
        pause = max(0.0, args.connections / wanted * 1000 - latency_ms)
        print(f"max {peak.rps:,.0f} req/s (c=16, {args.calibrate} s, p99 "
              f"{peak.p99_us / 1000:.1f} ms); target {wanted:,.0f} req/s: pause {pause:.1f} ms "
              f"per request on {args.connections} connections", flush=True)  # fmt: skip
        lua = paced_lua(workdir, pause)
        result: list[str] = []
        runner = threading.Thread(
            target=lambda: result.append(
                wrk_paced(url, paths, lua, args.connections, args.seconds)
            )
        )
        started = time.monotonic()
        runner.start()
        while runner.is_alive():
            pids = {int(n): int(p) for n, p in _WORKER_LINE.findall(server.log_tail(10_000))}
            row: dict[str, float] = {"t": round(time.monotonic() - started, 1)}
            totals = [0, 0, 0, 0]
            for name, pid in [("main", server.pid or 0), *((f"w{n}", p) for n, p in pids.items())]:
                rss, pss, fds, socks = process_sample(pid)
                row.update({f"{name}_rss": rss, f"{name}_pss": pss, f"{name}_fds": fds,
                            f"{name}_sockets": socks})  # fmt: skip
                totals = [a + b for a, b in zip(totals, (rss, pss, fds, socks), strict=True)]
            row.update(dict(zip(("rss", "pss", "fds", "sockets"), totals, strict=True)))
            samples.append(row)
            runner.join(args.every)
        summary = parse_wrk_output(result[0]) if result else None
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    columns = sorted({key for row in samples for key in row}, key=lambda k: (k != "t", k))
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(samples)
    if summary is not None:
        print(f"soak: {summary.requests:,} requests in {args.seconds} s = "
              f"{summary.rps:,.0f} req/s ({summary.rps / peak.rps:.0%} of max), "
              f"p50 {summary.p50_us / 1000:.2f} ms, p99 {summary.p99_us / 1000:.2f} ms, "
              f"errors {summary.errors}")  # fmt: skip
    report(samples)
    if args.png is not None:
        plot(samples, args.png)


def report(samples: list[dict[str, float]]) -> None:
    """First minute vs last minute of each total: flat or growing."""
    if len(samples) < 4:
        return
    cut = max(1, len(samples) // 10)
    for key, unit in (("pss", "MiB"), ("rss", "MiB"), ("fds", ""), ("sockets", "")):
        scale = 1024 if unit else 1
        first = [s[key] / scale for s in samples[1 : cut + 1]]
        last = [s[key] / scale for s in samples[-cut:]]
        print(f"{key:>8}: first {cut} samples {min(first):.1f}-{max(first):.1f} {unit}, "
              f"last {cut} {min(last):.1f}-{max(last):.1f} {unit}, "
              f"overall max {max(s[key] / scale for s in samples):.1f}")  # fmt: skip


def plot(samples: list[dict[str, float]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t"] / 60 for s in samples]
    fig, (mem, fds) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for key, label in (("pss", "PSS, all processes"), ("rss", "RSS, all processes")):
        mem.plot(t, [s[key] / 1024 for s in samples], label=label)
    for name in sorted({k.split("_")[0] for k in samples[0] if k.endswith("_pss")}):
        mem.plot(t, [s.get(f"{name}_pss", 0) / 1024 for s in samples], lw=0.8,
                 ls="--", label=f"PSS {name}")  # fmt: skip
    mem.set_ylabel("MiB")
    mem.set_ylim(bottom=0)
    mem.legend(loc="lower right", fontsize=8)
    mem.set_title("reelsearch serve --workers 2 under a steady load (soak)")
    fds.plot(t, [s["fds"] for s in samples], label="open file descriptors")
    fds.plot(t, [s["sockets"] for s in samples], label="of which sockets")
    fds.set_ylim(bottom=0)
    fds.set_xlabel("minutes")
    fds.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)


if __name__ == "__main__":
    main()
