"""Where a worker's event loop waits in the kernel under load: system calls of the loop
thread and its sleeps in uninterruptible state (D), per server, alternating.

Why: the tail of a 2-worker server on 2 cores comes from waits of the loop thread:
off the CPU for a neighbour, waiting for the interpreter lock, or blocked in a system
call. The last kind is the server's own doing and shows in the kernel: for each server
(``--server name=command``; ``{host} {port} {workers}`` are filled in, ``-`` for this
checkout's ``reelsearch serve``), wrk drives ``--paths`` (default: ``/health``) at
``-c`` for ``--seconds`` while

- ``perf trace -s`` counts the loop thread's system calls (calls, total and longest
  time per call kind: a ``write`` per access line shows here);
- ``perf record -e sched:sched_switch`` records each time the loop thread leaves the
  CPU; those in state D (uninterruptible: a lock or the disk) are counted and totalled
  by the kernel function they waited in (``fdget_pos``: a file position shared by the
  workers, ``fdatasync``: the disk).

One worker's loop thread is traced per round (the first worker). Needs ``perf`` with
tracepoint access (root). Rounds alternate the servers.

    python bench/loop_pauses.py --db sample.db --ports 18200-18299 \\
        --server "before=env PYTHONPATH=/tmp/before/src python -m reelsearch serve \\
                  --host {host} --port {port} --workers {workers}" --server after=- --rounds 2
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load import LUA
from procs import REELSEARCH_CMD, reelsearch_server
from zipf_load import server_pid, use_ports

_SWITCH = re.compile(r"prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)")
_TIME = re.compile(r"\s(\d+\.\d+):")
_SUMMARY = re.compile(r"^\s+(\w+)\s+(\d+)\s+\d+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)")


def first_worker(pid: int) -> int:
    """The first worker process of a server (granian forks them from ``pid``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0])


def trace_round(base: str, loop_tid: int, paths: Path, c: int, seconds: int, work: Path) -> str:
    """One wrk run on ``base`` with the loop thread traced; a report line."""
    record = work / f"switch-{loop_tid}.data"
    wrk = ["wrk", "-t2", f"-c{c}", f"-d{seconds}s", "--latency", "-s", str(LUA), base, "--",
           str(paths), "2"]  # fmt: skip
    switches = subprocess.Popen(
        ["perf", "record", "-q", "-g", "-e", "sched:sched_switch", "-a", "-o", str(record),
         "--", "sleep", str(seconds + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    summary = subprocess.Popen(
        ["perf", "trace", "-s", "-t", str(loop_tid)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    time.sleep(0.3)
    out = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
    summary.send_signal(2)  # SIGINT: perf trace prints its summary and ends
    calls_text = summary.communicate(timeout=30)[0]
    switches.wait(timeout=30)
    p99 = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("99%"))
    rps = next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec"))
    calls = {}
    for line in calls_text.splitlines():
        found = _SUMMARY.match(line)
        if found:
            calls[found[1]] = (int(found[2]), float(found[3]), float(found[4]))
    waits = d_state_waits(record, loop_tid)
    shown = ", ".join(
        f"{name} {n:,} calls {total:.0f} ms max {longest:.1f} ms"
        for name, (n, total, longest) in sorted(calls.items(), key=lambda kv: -kv[1][1])[:5]
    )
    d_text = "; ".join(
        f"{where}: {len(times)} waits, {sum(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
        for where, times in sorted(waits.items(), key=lambda kv: -sum(kv[1]))
    )
    return f"{rps} req/s, p99 {p99}; loop syscalls: {shown}; D waits: {d_text or 'none'}"


def d_state_waits(record: Path, tid: int) -> dict[str, list[float]]:
    """Seconds the thread spent off the CPU in state D, by the kernel function it slept in."""
    text = subprocess.run(
        ["perf", "script", "-i", str(record)], capture_output=True, text=True, check=False
    ).stdout
    waits: dict[str, list[float]] = collections.defaultdict(list)
    left: tuple[float, str] | None = None
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        found, stamp = _SWITCH.search(lines[0]), _TIME.search(lines[0])
        if not found or not stamp:
            continue
        now = float(stamp[1])
        if int(found[3]) == tid and left is not None:
            waits[left[1]].append(now - left[0])
            left = None
        if int(found[1]) == tid and found[2].startswith("D"):
            left = (now, _wait_site(lines[1:]))
    return waits


def _wait_site(stack: list[str]) -> str:
    """``syscall/function``: the system call and the first kernel function that is not
    a generic sleep (``write/fdget_pos``, ``fdatasync/folio_wait_writeback``)."""
    frames = [line.split()[1].split("+")[0] for line in stack if len(line.split()) > 1]
    calls = [f.split("_sys_")[-1] for f in frames if f.startswith(("__x64_sys_", "ksys_"))]
    generic = ("__schedule", "schedule", "io_schedule", "__mutex_lock", "mutex_lock",
               "bit_wait", "__wait_on_bit", "out_of_line_wait_on_bit", "folio_wait")  # fmt: skip
    site = next((f for f in frames if not f.startswith(generic)), "?")
    return f"{calls[0] if calls else 'fault'}/{site}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--server", action="append", required=True, help="name=command, - for this one")
    p.add_argument("--paths", type=Path, help="wrk paths file (default: /health)")
    p.add_argument("-c", type=int, default=64)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--ports", default="18300-18399")
    args = p.parse_args()
    use_ports(args.ports)
    with tempfile.TemporaryDirectory(prefix="loop-pauses-") as tmp, contextlib.ExitStack() as st:
        work = Path(tmp)
        paths = args.paths or work / "health.txt"
        if args.paths is None:
            paths.write_text("/health\n")
        servers = {}
        for spec in args.server:
            name, _, cmd = spec.partition("=")
            env = {"REELSEARCH_CACHE": "memory"}
            command = REELSEARCH_CMD if cmd == "-" else cmd
            base, _ = st.enter_context(
                reelsearch_server(name, f"sqlite:///{args.db.resolve()}", work,
                                  workers=args.workers, cmd=command, env=env)
            )  # fmt: skip
            servers[name] = (base, first_worker(server_pid(base)))
        print(f"python {' '.join(shlex.quote(a) for a in sys.argv)}", flush=True)
        for base, _ in servers.values():  # warm-up, unrecorded
            subprocess.run(["wrk", "-t2", f"-c{args.c}", "-d3s", "-s", str(LUA), base, "--",
                            str(paths), "2"], capture_output=True, check=True)  # fmt: skip
        for round_ in range(args.rounds):
            for name, (base, worker) in servers.items():
                load = Path("/proc/loadavg").read_text().split()[0]
                line = trace_round(base, worker, paths, args.c, args.seconds, work)
                print(f"round {round_ + 1} {name} (load {load}): {line}", flush=True)


if __name__ == "__main__":
    main()
