"""Which PostgreSQL connection pool for the search hot path (docs/decisions/0004).

One process on uvloop (asyncio if uvloop is missing). The script creates the
scratch database ``rs_pool_bench`` (200k titles, a tsvector column with a GIN
index, an int popularity column with a btree index), drops it at the end, and
measures N tasks that each loop checkout -> one indexed query -> return for a
fixed time:

  a   SQLAlchemy async engine (AsyncAdaptedQueuePool), raw asyncpg driver connection via
      `async with engine.connect() as c: await c.get_raw_connection()` (3 greenlet hops);
      a8-rc: `await engine.raw_connection()` + `greenlet_spawn(close)` (2 hops);
      a8-gate: a8-rc behind a FIFO asyncio.Semaphore(pool size)
  b   a with pool_pre_ping=True; b-ac: also isolation_level=AUTOCOMMIT
  c   asyncpg.create_pool (default reset on release); c-noreset: reset=no-op
  d   psycopg_pool.AsyncConnectionPool, psycopg async, prepare_threshold=0, check=None
  e   one bare asyncpg connection per task (no pool): the driver's upper bound

Then checkout + return with no query, one task, in µs; whether SQLAlchemy's
pre-ping pings on every checkout; and what each pool reports under load.

    python bench/pg_pool_choice.py --seconds 5 --runs 3 [--query pk fts]

``pk`` (one row by primary key) shows the pool's own cost; ``fts`` (a typed
title search on the GIN index) shows how much of it is left next to real work.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import psycopg
import psycopg_pool
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import greenlet_spawn

try:
    import uvloop

    LOOP_FACTORY: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
except ImportError:  # pragma: no cover - the service ships with uvloop (0001)
    LOOP_FACTORY = None

DB = "rs_pool_bench"
SQL = {
    # A typed search: first word and a prefix of the next, most popular first.
    "fts": "SELECT id, title, popularity FROM titles "
    "WHERE tsv @@ to_tsquery('simple', $1) ORDER BY popularity DESC LIMIT 10",
    # The cheapest indexed read: one row by primary key.
    "pk": "SELECT id, title, popularity FROM titles WHERE id = $1",
}
SYLLABLES = [c + v for c in "kstnmrd" for v in "aeiou"]  # words of 2-4 syllables

Request = Callable[[Any], Awaitable[float]]  # runs one query, returns the checkout time


# --- the scratch database -------------------------------------------------------------


def create_database(admin_dsn: str, rows: int, seed: int) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    rng = random.Random(seed)
    vocab = sorted(
        {"".join(rng.choices(SYLLABLES, k=rng.choice((2, 3, 3, 4)))) for _ in range(30000)}
    )
    rng.shuffle(vocab)
    # Zipf-like word frequencies, as cumulative weights (choices() would sum them every call).
    cum = list(itertools.accumulate(1 / (rank + 10) for rank in range(len(vocab))))
    with psycopg.connect(db_dsn(admin_dsn), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE titles (id int PRIMARY KEY, title text NOT NULL, popularity int NOT NULL,"
            " tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED)"
        )
        with conn.cursor().copy("COPY titles (id, title, popularity) FROM STDIN") as copy:
            for i in range(1, rows + 1):
                words = rng.choices(vocab, cum_weights=cum, k=rng.choice((1, 2, 2, 3, 3, 4, 5)))
                copy.write_row((i, " ".join(words), int(rng.paretovariate(1.2) * 10)))
        conn.execute("CREATE INDEX ON titles USING gin (tsv) WITH (fastupdate = off)")
        conn.execute("CREATE INDEX ON titles (popularity)")
        conn.execute("VACUUM ANALYZE titles")


def load_arguments(admin_dsn: str, query: str, seed: int, n: int = 2000) -> list[Any]:
    """Query arguments drawn from the titles themselves, as people type them."""
    rng = random.Random(seed + 1)
    with psycopg.connect(db_dsn(admin_dsn)) as conn:
        nrows = conn.execute("SELECT count(*) FROM titles").fetchone()[0]  # type: ignore[index]
        if query == "pk":
            return [rng.randint(1, nrows) for _ in range(n)]
        ids = [rng.randint(1, nrows) for _ in range(n)]
        titles = conn.execute("SELECT title FROM titles WHERE id = ANY(%s)", (ids,)).fetchall()
    args = []
    for (title,) in titles:
        words = title.split()
        last = words[min(1, len(words) - 1)]
        head = [words[0]] if len(words) > 1 else []
        args.append(" & ".join([*head, last[: max(4, len(last) - 2)] + ":*"]))
    return args


def drop_database(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def db_dsn(admin_dsn: str) -> str:
    return admin_dsn.rsplit("/", 1)[0] + "/" + DB


# --- the variants -----------------------------------------------------------------------


@dataclass
class Variant:
    """A way to get a connection and run one query; start() opens it, stop() closes it."""

    name: str
    kind: str  # a, b, c, d or e
    size: int = 8
    path: str = "connect"  # a/b only: connect, raw or gate (see the module docstring)
    options: dict[str, Any] = field(default_factory=dict)
    pool: Any = None
    gate: Any = None
    conns: list[Any] = field(default_factory=list)

    async def start(self, dsn: str, concurrency: int) -> None:
        if self.kind in "ab":
            self.gate = asyncio.Semaphore(self.size)
            url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
            self.pool = create_async_engine(
                url,
                pool_size=self.size,
                max_overflow=0,  # a fixed size, as for every other pool
                pool_timeout=30,
                pool_recycle=1800,
                pool_pre_ping=self.kind == "b",
                pool_use_lifo=True,
                **self.options,
            )
            conns = [await self.pool.connect() for _ in range(self.size)]
            for c in conns:
                await c.close()
        elif self.kind == "c":
            self.pool = await asyncpg.create_pool(
                dsn, min_size=self.size, max_size=self.size, **self.options
            )
        elif self.kind == "d":
            self.pool = psycopg_pool.AsyncConnectionPool(
                dsn,
                min_size=self.size,
                max_size=self.size,
                check=None,
                open=False,
                kwargs={"autocommit": True, "prepare_threshold": 0},
            )
            await self.pool.open(wait=True)
        else:
            self.conns = [await asyncpg.connect(dsn) for _ in range(concurrency)]

    async def stop(self) -> None:
        if self.kind in "ab":
            await self.pool.dispose()
        elif self.kind in "cd":
            await self.pool.close()
        for conn in self.conns:
            await conn.close()
        self.pool, self.conns = None, []

    def request(self, sql: str, task: int) -> Request:
        """The per-request code each option would put on the hot path."""
        pool = self.pool
        if self.kind in "ab" and self.path == "raw":

            async def request(arg: Any) -> float:
                t0 = time.perf_counter()
                raw = await pool.raw_connection()
                t1 = time.perf_counter()
                try:
                    await raw.driver_connection.fetch(sql, arg)
                finally:
                    await greenlet_spawn(raw.close)
                return t1 - t0

        elif self.kind in "ab" and self.path == "gate":
            # asyncio.Queue (inside SQLAlchemy's and asyncpg's pools) lets a task that
            # returns a connection and checks out again at once overtake the waiters;
            # an asyncio.Semaphore hands the slot to the oldest waiter (FIFO).
            gate = self.gate

            async def request(arg: Any) -> float:
                t0 = time.perf_counter()
                async with gate:
                    raw = await pool.raw_connection()
                    t1 = time.perf_counter()
                    try:
                        await raw.driver_connection.fetch(sql, arg)
                    finally:
                        await greenlet_spawn(raw.close)
                return t1 - t0

        elif self.kind in "ab":

            async def request(arg: Any) -> float:
                t0 = time.perf_counter()
                async with pool.connect() as c:
                    t1 = time.perf_counter()
                    raw = await c.get_raw_connection()
                    await raw.driver_connection.fetch(sql, arg)
                return t1 - t0

        elif self.kind == "c":

            async def request(arg: Any) -> float:
                t0 = time.perf_counter()
                async with pool.acquire() as conn:
                    t1 = time.perf_counter()
                    await conn.fetch(sql, arg)
                return t1 - t0

        elif self.kind == "d":
            psql = sql.replace("$1", "%s")

            async def request(arg: Any) -> float:
                t0 = time.perf_counter()
                async with pool.connection() as conn:
                    t1 = time.perf_counter()
                    cur = await conn.execute(psql, (arg,))
                    await cur.fetchall()
                return t1 - t0

        else:
            conn = self.conns[task]

            async def request(arg: Any) -> float:
                await conn.fetch(sql, arg)
                return 0.0

        return request

    async def checkout_once(self) -> None:
        if self.kind in "ab" and self.path == "gate":
            async with self.gate:
                raw = await self.pool.raw_connection()
                await greenlet_spawn(raw.close)
        elif self.kind in "ab" and self.path == "raw":
            raw = await self.pool.raw_connection()
            await greenlet_spawn(raw.close)
        elif self.kind in "ab":
            async with self.pool.connect() as c:
                await c.get_raw_connection()
        elif self.kind == "c":
            async with self.pool.acquire():
                pass
        elif self.kind == "d":
            async with self.pool.connection():
                pass
        else:
            await self.conns[0].fetchrow(";")  # one round trip, for scale

    def stats(self) -> str:
        """What the pool itself can tell the metrics layer."""
        if self.kind in "ab":
            p = self.pool.pool
            return (
                f"size()={p.size()} checkedout()={p.checkedout()} "
                f"checkedin()={p.checkedin()} overflow()={p.overflow()}"
            )
        if self.kind == "c":
            return f"get_size()={self.pool.get_size()} get_idle_size()={self.pool.get_idle_size()}"
        if self.kind == "d":
            s = self.pool.get_stats()
            keys = ("pool_size", "pool_available", "requests_waiting", "requests_num")
            return " ".join(f"{k}={s.get(k, 0)}" for k in (*keys, "requests_wait_ms"))
        return "-"


async def _noop_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query (RESET ALL, UNLISTEN *, ...) on release."""


def variants(sizes: list[int]) -> list[Variant]:
    out = [Variant(f"a{n} SQLAlchemy+asyncpg raw", "a", n) for n in sizes]
    out += [
        Variant("a8-rc engine.raw_connection()", "a", path="raw"),
        Variant("a8-gate a8-rc + FIFO semaphore", "a", path="gate"),
        Variant("b8 a + pre_ping", "b"),
        Variant("b8-ac a + pre_ping, AUTOCOMMIT", "b", options={"isolation_level": "AUTOCOMMIT"}),
        Variant("c8 asyncpg pool", "c"),
        Variant("c8-noreset asyncpg pool, no-op reset", "c", options={"reset": _noop_reset}),
        Variant("d8 psycopg_pool, prepared", "d"),
        Variant("e bare asyncpg conn per task", "e"),
    ]
    return out


# --- measuring --------------------------------------------------------------------------


@dataclass
class Cell:
    rps: float
    p50: float
    p99: float
    max_ms: float  # the slowest request, counting those still waiting at the end
    checkout_us: float
    cpu_us: float
    stats: str


async def run_load(
    v: Variant, sql: str, args: list[Any], concurrency: int, warmup: float, seconds: float
) -> Cell:
    recording = False
    stop = False
    lat: list[float] = []
    waits: list[float] = []
    started = [0.0] * concurrency  # when each task's current request began

    async def task(i: int) -> None:
        request = v.request(sql, i)
        j = i * 7919
        n = len(args)
        perf = time.perf_counter
        while not stop:
            t0 = started[i] = perf()
            w = await request(args[j % n])
            if recording:
                lat.append(perf() - t0)
                waits.append(w)
            j += 1

    tasks = [asyncio.create_task(task(i)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    recording = True
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds / 2)
    stats = v.stats()  # a snapshot under load
    await asyncio.sleep(seconds / 2)
    recording = False
    end = time.perf_counter()
    elapsed, cpu = end - t0, time.process_time() - c0
    oldest = end - min(started)  # a starved task never completes inside the window
    stop = True
    await asyncio.gather(*tasks)
    lat.sort()
    n = len(lat)
    return Cell(
        rps=n / elapsed,
        p50=lat[n // 2] * 1e3,
        p99=lat[min(n - 1, int(n * 0.99))] * 1e3,
        max_ms=max(lat[-1], oldest) * 1e3,
        checkout_us=statistics.fmean(waits) * 1e6,
        cpu_us=cpu / n * 1e6,
        stats=stats,
    )


async def time_checkout(v: Variant, seconds: float) -> float:
    """µs per checkout + return with no query, one task: the best slice of 200.

    Other processes only ever add time, so the fastest slice is the pool's own cost.
    """
    for _ in range(200):
        await v.checkout_once()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(200):
            await v.checkout_once()
        best = min(best, (time.perf_counter() - t0) / 200)
    return best * 1e6


async def count_pre_pings(dsn: str, concurrency: int, per_task: int) -> tuple[int, int, int]:
    """(checkouts, pings, connections opened) for a pre-ping engine under concurrent use."""
    v = Variant("b", "b")
    await v.start(dsn, concurrency)
    dialect = v.pool.sync_engine.dialect
    pings = 0
    do_ping = dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        nonlocal pings
        pings += 1
        return bool(do_ping(dbapi_connection))

    dialect.do_ping = counting_ping
    opened = 0

    @event.listens_for(v.pool.sync_engine, "connect")
    def _on_connect(*_: Any) -> None:
        nonlocal opened
        opened += 1

    await v.pool.dispose()  # start empty: fresh connections are not pinged

    async def task() -> None:
        for _ in range(per_task):
            async with v.pool.connect() as c:
                await (await c.get_raw_connection()).driver_connection.fetchrow("SELECT 1")

    await asyncio.gather(*(task() for _ in range(concurrency)))
    await v.stop()
    return concurrency * per_task, pings, opened


def spread(xs: list[float]) -> str:
    m = statistics.median(xs)
    return f"±{(max(xs) - min(xs)) / 2 / m:.0%}" if m else "-"


async def bench(args: argparse.Namespace, dsn: str, qargs: dict[str, list[Any]]) -> None:
    vs = variants(args.sizes)
    cells: dict[tuple[str, str, int], list[Cell]] = {}
    checkouts: dict[str, list[float]] = {}
    for run in range(args.runs):
        order = vs[:]
        random.Random(run).shuffle(order)  # spread the machine's noise over the variants
        for v in order:
            for query, conc in itertools.product(args.query, args.concurrency):
                await v.start(dsn, conc)
                try:
                    cell = await run_load(
                        v, SQL[query], qargs[query], conc, args.warmup, args.seconds
                    )
                finally:
                    await v.stop()
                cells.setdefault((query, v.name, conc), []).append(cell)
                print(
                    f"run {run + 1} {v.name:38s} {query:3s} c={conc:<3d} {cell.rps:7.0f} req/s "
                    f"p50 {cell.p50:6.2f} p99 {cell.p99:6.2f} ms",
                    flush=True,
                )
            if v.kind != "a" or v.size == 8:  # checkout cost does not depend on size
                await v.start(dsn, 1)
                try:
                    checkouts.setdefault(v.name, []).append(
                        await time_checkout(v, args.checkout_seconds)
                    )
                finally:
                    await v.stop()

    bare = next(v.name for v in vs if v.kind == "e")
    print(f"\n### Load: {args.seconds:g} s x {args.runs} runs, medians\n")
    print(
        "| variant | query | conc | req/s | spread | p50 ms | p99 ms | max ms | x bare (e) "
        "| checkout wait µs | client CPU µs/req |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for query, conc in itertools.product(args.query, args.concurrency):
        base = cells[(query, bare, conc)]
        for v in vs:
            cs = cells[(query, v.name, conc)]
            rps = [c.rps for c in cs]
            ratio = statistics.median(c.rps / b.rps for c, b in zip(cs, base, strict=True))
            print(
                f"| {v.name} | {query} | {conc} | {statistics.median(rps):,.0f} | {spread(rps)} "
                f"| {statistics.median(c.p50 for c in cs):.2f} "
                f"| {statistics.median(c.p99 for c in cs):.2f} "
                f"| {statistics.median(c.max_ms for c in cs):.0f} | {ratio:.2f} "
                f"| {statistics.median(c.checkout_us for c in cs):.0f} "
                f"| {statistics.median(c.cpu_us for c in cs):.0f} |"
            )
    print("\n### Checkout + return, no query, one task (e: one `SELECT ;` round trip)\n")
    print("| variant | µs per checkout (best slice, median of runs) | spread |")
    print("|---|--:|--:|")
    for name, xs in checkouts.items():
        print(f"| {name} | {statistics.median(xs):.1f} | {spread(xs)} |")
    last = (args.query[-1], args.concurrency[-1])
    print(f"\n### Pool statistics half-way through the last {last[0]} c={last[1]} run\n")
    for v in vs:
        if v.kind != "e":
            print(f"- {v.name}: {cells[(last[0], v.name, last[1])][-1].stats}")
    made, pings, opened = await count_pre_pings(dsn, 16, 200)
    print(
        f"\nSQLAlchemy pre-ping, 16 tasks x 200 checkouts: {made} checkouts, {pings} pings, "
        f"{opened} connections opened (fresh ones are not pinged)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16], help="pool sizes of a")
    parser.add_argument("--query", choices=sorted(SQL), nargs="+", default=["pk", "fts"])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--checkout-seconds", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if 8 not in args.sizes:
        args.sizes.append(8)
    print(
        f"loop {'uvloop' if LOOP_FACTORY else 'asyncio'}; asyncpg {asyncpg.__version__}, "
        f"psycopg {psycopg.__version__}, psycopg_pool {psycopg_pool.__version__}, "
        f"sqlalchemy {sqlalchemy.__version__}",
        flush=True,
    )
    started = time.perf_counter()
    create_database(args.dsn, args.rows, args.seed)
    try:
        qargs = {query: load_arguments(args.dsn, query, args.seed) for query in args.query}
        print(f"database ready in {time.perf_counter() - started:.1f} s", flush=True)
        with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
            runner.run(bench(args, db_dsn(args.dsn), qargs))
    finally:
        drop_database(args.dsn)


if __name__ == "__main__":
    main()
