"""Never-asked searches over HTTP against several servers in turn: server CPU, minor page
faults and context switches per request, rounds rotating (decision 0039's diagnosis).

A server is "off", levels ("memory-disk"), or levels with settings added
("memory-disk+REELSEARCH_CACHE_MEMORY_BYTES=1048576"). ``--warm N`` first runs N other
searches four times each through every cache-on server; ``--profile DIR`` records each
server's worker with py-spy (``--perf``: perf cpu-clock:u) instead of the rounds.

    python bench/cold_miss_ab.py --rounds 8 --seconds 2 --slice 4000 \
        --servers "off,memory-disk+REELSEARCH_CACHE_DOORKEEPER=false,memory-disk"
"""

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from catalog import load_movies
from engines import Reelsearch
from load import Target, run_wrk
from procs import reelsearch_server
from queries import generate
from zipf_load import server_pid, use_ports, write

LINE = "rps {:.0f} cpu {:.0f} flt {:.2f} vcs {:.2f} ivcs {:.2f} p99 {:.1f} sys {:.0f}"


def tree(root):
    kids = {}
    for e in Path("/proc").iterdir():
        if e.name.isdigit():
            try:
                f = (e / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kids.setdefault(int(f[1]), []).append(int(e.name))
    out, fr = [root], [root]
    while fr:
        p = fr.pop()
        for c in kids.get(p, []):
            out.append(c)
            fr.append(c)
    return out


def counters(root):
    tick = os.sysconf("SC_CLK_TCK")
    tot = {"cpu": 0.0, "minflt": 0, "vcs": 0, "ivcs": 0, "sys": 0.0}
    for pid in tree(root):
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            Path(f"/proc/{pid}/status").read_text()
            # threads too
            for t in Path(f"/proc/{pid}/task").iterdir():
                ts = (t / "status").read_text()
                for line in ts.splitlines():
                    if line.startswith("voluntary_ctxt_switches"):
                        tot["vcs"] += int(line.split()[1])
                    if line.startswith("nonvoluntary_ctxt_switches"):
                        tot["ivcs"] += int(line.split()[1])
        except OSError:
            continue
        tot["cpu"] += (int(f[11]) + int(f[12])) / tick
        tot["sys"] += int(f[12]) / tick
        tot["minflt"] += int(f[7])
    return tot


p = argparse.ArgumentParser()
p.add_argument("--db", default="/tmp/shared/sample.db")
p.add_argument("--rounds", type=int, default=4)
p.add_argument("--seconds", type=int, default=2)
p.add_argument("--c", type=int, default=16)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--slice", type=int, default=8000)
p.add_argument("--servers", default="off,memory-disk")
p.add_argument("--hold", type=float, default=0)
p.add_argument("--extra", default="")
p.add_argument("--profile", default="")
p.add_argument("--native", action="store_true")
p.add_argument("--perf", action="store_true")
p.add_argument("--warm", type=int, default=0)
p.add_argument("--warm-seconds", type=int, default=20)
a = p.parse_args()
use_ports("27500-27599")
servers = a.servers.split(",")
need = a.slice * len(servers) * a.rounds
need_all = need + a.warm
qs = generate(load_movies(Path(a.db)), per_kind=need_all // 5 + 2000, seed=31, min_votes=0)
random.Random(31).shuffle(qs)
rs = Reelsearch("")
paths = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in qs))
assert len(paths) >= need_all, len(paths)
figs = {s: [] for s in servers}
with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as st:
    work = Path(tmp)
    base = {}
    for s in servers:
        cache, _, extra = s.partition("+")
        env = {
            "REELSEARCH_CACHE": cache.replace("-", ","),
            "REELSEARCH_CACHE_WARM_TOP": "0",
            "REELSEARCH_CACHE_TTL": "3600",
            "REELSEARCH_CACHE_DISK_PATH": str(work / f"l3-{s}"),
        }
        for kv in filter(None, extra.split("+")):
            k, v = kv.split("=", 1)
            env[k] = v
        url, _ = st.enter_context(
            reelsearch_server(
                s.replace(",", "_").replace("+", "_").replace("=", "_"),
                f"sqlite:///{a.db}",
                work,
                workers=a.workers,
                env=env,
            )
        )
        base[s] = url
    pids = {s: server_pid(u) for s, u in base.items()}
    print("pids", pids, flush=True)
    if a.profile:
        import subprocess
        import threading

        fresh = iter(range(0, need, a.slice))
        for r in range(a.rounds):
            for s in servers:
                st0 = next(fresh)
                pf = write(work / f"c{st0}.txt", paths[st0 : st0 + a.slice])
                worker = tree(pids[s])[1]
                out = f"{a.profile}/{s}-{r}.txt"
                argv = [
                    "py-spy",
                    "record",
                    "-p",
                    str(worker),
                    "-d",
                    str(a.seconds - 1),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    out,
                    "--nonblocking",
                ]
                if a.perf:
                    argv = [
                        "perf",
                        "record",
                        "-e",
                        "cpu-clock:u",
                        "-F",
                        "999",
                        "-g",
                        "-p",
                        str(worker),
                        "-o",
                        out.replace(".txt", ".data"),
                        "--",
                        "sleep",
                        str(a.seconds - 1),
                    ]
                if a.native:
                    argv.insert(2, "--native")
                th = threading.Thread(
                    target=subprocess.run, args=(argv,), kwargs={"capture_output": True}
                )
                res: list[Any] = [None]

                target = Target(s, base[s], pf)

                def load(res: list[Any] = res, target: Target = target) -> None:
                    res[0] = run_wrk(target, a.c, a.seconds)

                lt = threading.Thread(target=load)
                lt.start()
                time.sleep(0.5)
                th.start()
                lt.join()
                th.join()
                print(s, r, res[0].rps, res[0].requests, out, flush=True)
        sys.exit(0)
    if a.warm:
        hot = paths[need : need + a.warm]
        hf = write(work / "hot.txt", hot * 4)
        for s in servers:
            if not s.startswith("off"):
                r = run_wrk(Target(s, base[s], hf), 64, a.warm_seconds)
                print("warmed", s, r.requests, flush=True)
    if a.hold:
        time.sleep(a.hold)
    fresh = iter(range(0, need, a.slice))
    for r in range(a.rounds):
        sh = r % len(servers)
        for s in servers[sh:] + servers[:sh]:
            st0 = next(fresh)
            pf = write(work / f"c{st0}.txt", paths[st0 : st0 + a.slice])
            b = counters(pids[s])
            res = run_wrk(Target(s, base[s], pf), a.c, a.seconds)
            e = counters(pids[s])
            n = res.requests
            if n >= a.slice:
                print("slice ran out", s, n)
                continue
            figs[s].append(
                (
                    res.rps,
                    (e["cpu"] - b["cpu"]) / n * 1e6,
                    (e["minflt"] - b["minflt"]) / n,
                    (e["vcs"] - b["vcs"]) / n,
                    (e["ivcs"] - b["ivcs"]) / n,
                    res.p99_us / 1000,
                    (e["sys"] - b["sys"]) / n * 1e6,
                )
            )
            print(
                s,
                LINE.format(*figs[s][-1]),
                flush=True,
            )
print(Path("/proc/loadavg").read_text())
for s, rows in figs.items():
    med = [statistics.median(x) for x in zip(*rows, strict=False)]
    print(f"MEDIAN {s}: " + LINE.format(*med))
