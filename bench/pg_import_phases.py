"""Run ``reelsearch ... import imdb`` and record per import phase: wall time, the client's CPU,
the server's CPU (the import's backends plus any parallel workers seen), the load average, and
the time each side waited for a CPU (run-queue time from ``/proc/<pid>/schedstat``); the last
column estimates the phase's wall time on a quiet machine (decision 0023).

    PROF_DSN=postgresql://postgres@127.0.0.1:5432/DB python bench/pg_import_phases.py \
        --quiet --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB import imdb ...

``PROF_STMTS=1`` also prints every statement over 0.25 s; ``PROF_EXPLAIN=REGEX`` explains
(ANALYZE, BUFFERS) the statements matching REGEX instead of running them.
"""

import os
import re
import sys
import threading
import time

from reelsearch.catalog import postgres_writer as pw

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / TICK
    except OSError:
        return None


def rq_wait(path):
    try:
        with open(path) as f:
            return int(f.read().split()[1]) / 1e9
    except OSError:
        return None


class Server:
    """CPU of the import's backends (all connections named 'reelsearch import*') and their
    parallel workers, sampled every 50 ms (last sample of an exited worker kept)."""

    def __init__(self):
        self.seen = {}
        self.rq = {}
        self.crq = {}
        self.stop = False
        import psycopg

        self.mon = psycopg.connect(os.environ["PROF_DSN"], autocommit=True)
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            rows = self.mon.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
                "(application_name LIKE 'reelsearch import%%' "
                "OR leader_pid IN (SELECT pid FROM pg_stat_activity "
                "WHERE application_name LIKE 'reelsearch import%%'))"
            ).fetchall()
            for (pid,) in rows:
                c = proc_cpu(pid)
                if c is not None:
                    self.seen[pid] = max(self.seen.get(pid, 0.0), c)
                w = rq_wait(f"/proc/{pid}/schedstat")
                if w is not None:
                    self.rq[pid] = max(self.rq.get(pid, 0.0), w)
            for tid in os.listdir("/proc/self/task"):
                if int(tid) == threading.get_native_id():
                    continue
                w = rq_wait(f"/proc/self/task/{tid}/schedstat")
                if w is not None:
                    self.crq[tid] = max(self.crq.get(tid, 0.0), w)
            time.sleep(0.05)

    def total(self):
        return sum(self.seen.values())

    def rq_server(self):
        return sum(self.rq.values())

    def rq_client(self):
        return sum(self.crq.values())


SERVER = Server()
state = {
    "wall": time.perf_counter(),
    "cpu": time.process_time(),
    "srv": 0.0,
    "rqs": 0.0,
    "rqc": 0.0,
}
rows = []
orig = pw.PostgresCatalogImport._phase


def _phase(self, name):
    orig(self, name)
    now, cpu, srv = time.perf_counter(), time.process_time(), SERVER.total()
    rqs, rqc = SERVER.rq_server(), SERVER.rq_client()
    rows.append(
        (
            name,
            now - state["wall"],
            cpu - state["cpu"],
            srv - state["srv"],
            os.getloadavg()[0],
            rqc - state["rqc"],
            rqs - state["rqs"],
        )
    )
    state.update(wall=now, cpu=cpu, srv=srv, rqs=rqs, rqc=rqc)


pw.PostgresCatalogImport._phase = _phase
if os.environ.get("PROF_STMTS"):
    import psycopg

    _exec = psycopg.Connection.execute
    EXPLAIN = re.compile(os.environ.get("PROF_EXPLAIN", "^$"))

    def execute(self, query, *a, **k):
        t = time.perf_counter()
        c0 = SERVER.total()
        text = query if isinstance(query, str) else query.as_string(self)
        if os.environ.get("PROF_EXPLAIN") and EXPLAIN.search(" ".join(text.split())):
            plan = _exec(self, "EXPLAIN (ANALYZE, BUFFERS) " + text, *a, **k).fetchall()
            print("\n".join(r[0] for r in plan), file=sys.stderr)
            return _exec(self, "SELECT 1")
        try:
            return _exec(self, query, *a, **k)
        finally:
            d = time.perf_counter() - t
            if d > 0.25:
                text = query if isinstance(query, str) else query.as_string(self)
                text = " ".join(text.split())
                print(
                    f"  stmt {d:6.2f}s srv {SERVER.total() - c0:5.2f}  {text[:150]}",
                    file=sys.stderr,
                )

    psycopg.Connection.execute = execute
start = time.perf_counter()
from reelsearch.cli import main  # noqa: E402 (after the patches above)

try:
    main()
except SystemExit:
    pass
finally:
    time.sleep(0.1)
    SERVER.stop = True
    print(
        f"{'phase':<18}{'wall':>7}{'client':>8}{'server':>8}{'load':>6}{'c-rq':>7}{'s-rq':>7}{'quiet':>7}",
        file=sys.stderr,
    )
    tq = 0.0
    for name, w, c, s, load, rc, rs in rows:
        # time waiting for a CPU: both sides' waits when they take turns; the busier side's
        # when both run
        overlap = min(c, s) > 0.3 * max(c, s) and min(c, s) > 0.5
        q = w - ((rc if c + rc >= s + rs else rs) if overlap else rc + rs)
        q = max(q, max(c, s) if overlap else c + s)
        tq += q
        print(
            f"{name:<18}{w:7.1f}{c:8.1f}{s:8.1f}{load:6.1f}{rc:7.1f}{rs:7.1f}{q:7.1f}",
            file=sys.stderr,
        )
    tw = sum(r[1] for r in rows)
    tc = sum(r[2] for r in rows)
    ts = sum(r[3] for r in rows)
    print(
        f"{'total':<18}{tw:7.1f}{tc:8.1f}{ts:8.1f}{'':6}"
        f"{sum(r[5] for r in rows):7.1f}{sum(r[6] for r in rows):7.1f}{tq:7.1f}"
        f"  (run wall {time.perf_counter() - start:.1f})",
        file=sys.stderr,
    )
