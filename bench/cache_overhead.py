"""Per-lookup cost of library-backed cache levels against minimal hand-written ones.

What docs/decisions/0011-result-cache.md records: is a well-kept library
cheap enough on the hot path? Each line times N hits of a 3 kB entry.

- L1: our MemoryLevel.lookup vs cachetools.LRUCache (byte-bounded via getsizeof),
  vs a bare OrderedDict get + move_to_end (the floor).
- L2: redis-py asyncio GET (hiredis parser, pooled) vs a raw asyncio socket
  speaking RESP (the floor for one round trip).
- L3: diskcache.Cache.get vs a bare sqlite3 SELECT on a WAL file.

``--misses DB`` instead measures what the result cache adds to a miss, in process
(no HTTP server): each never-asked search (bench/queries.py) goes through an app with
the embedded default levels (memory + disk) and one with the cache off, query by query,
the order alternating, CPU time (``time.process_time``) summed per app. The
difference is the cache's cost per miss with the least noise this machine allows;
run it with ``PYTHONPATH=<other checkout>/src`` to compare two versions of the code.

    python bench/cache_overhead.py --redis redis://127.0.0.1:6379/8
    python bench/cache_overhead.py --misses ./reelsearch.db [--rounds 5 --cold 1000]

``--one LEVELS`` (with ``--misses``) runs one app only ("off" or levels), so the
garbage collector's full collections are this app's own: CPU per miss and the share
of generation-2 collections in it (``gc.callbacks``), the way a server process sees
them.

``--cold-http DB`` measures the same over HTTP: servers (2 workers) with the cache off
and with the embedded default levels, each round sending every server a fresh slice
of never-asked searches (wrk, ``--seconds``, the order rotating), server CPU per
request from /proc; ``--before-src`` adds the same two servers running another
checkout's code (``PYTHONPATH``).

    python bench/cache_overhead.py --cold-http ./reelsearch.db --ports 18100-18199 \
        [--before-src /tmp/main/src] [--rounds 4 --seconds 3 --concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sqlite3
import statistics
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

BODY = b"x" * 3000


def per_call_us(run: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        run()
    return (time.perf_counter() - started) / n * 1e6


def l1(n: int) -> list[tuple[str, float]]:
    import cachetools

    from reelsearch.cache.entry import CachedResponse
    from reelsearch.cache.memory import MemoryLevel

    now = time.time()
    ours = MemoryLevel(64 << 20, 3600)
    ours.put("k", CachedResponse(BODY, '"e"', "", now, now + 60, now + 90), now)
    lib: cachetools.LRUCache[str, bytes] = cachetools.LRUCache(64 << 20, getsizeof=len)
    lib["k"] = BODY
    bare: OrderedDict[str, bytes] = OrderedDict(k=BODY)

    def bare_get() -> object:
        found = bare.get("k")
        bare.move_to_end("k")
        return found

    return [
        (
            "L1 MemoryLevel.lookup (TinyLFU count + LRU)",
            per_call_us(lambda: ours.lookup("k", now), n),
        ),
        ("L1 cachetools.LRUCache get", per_call_us(lambda: lib.get("k"), n)),
        ("L1 bare OrderedDict get + move_to_end", per_call_us(bare_get, n)),
    ]


async def l2(url: str, n: int) -> list[tuple[str, float]]:
    from reelsearch.cache.redis import open_redis

    client = open_redis(url, timeout=1.0, pool_size=4)
    await client.set("bench:k", BODY)
    started = time.perf_counter()
    for _ in range(n):
        await client.get("bench:k")
    lib = (time.perf_counter() - started) / n * 1e6
    host, port = url.split("//")[1].split("/")[0].split(":")
    db = url.rsplit("/", 1)[1]
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"*2\r\n$6\r\nSELECT\r\n${len(db)}\r\n{db}\r\n".encode())
    await reader.readline()
    command = b"*2\r\n$3\r\nGET\r\n$7\r\nbench:k\r\n"
    started = time.perf_counter()
    for _ in range(n):
        writer.write(command)
        size = int((await reader.readline())[1:])
        await reader.readexactly(size + 2)
    raw = (time.perf_counter() - started) / n * 1e6
    writer.close()
    await client.delete("bench:k")
    await client.aclose(close_connection_pool=True)
    return [("L2 redis-py GET (hiredis, pooled)", lib), ("L2 raw RESP over asyncio socket", raw)]


def l3(n: int) -> list[tuple[str, float]]:
    import diskcache

    with tempfile.TemporaryDirectory() as tmp:
        cache = diskcache.Cache(tmp, eviction_policy="least-recently-stored", statistics=False)
        cache.set("k", BODY)
        conn = sqlite3.connect(Path(tmp) / "bare.db")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE c (k TEXT PRIMARY KEY, v BLOB, expires REAL)")
        conn.execute("INSERT INTO c VALUES ('k', ?, 1e12)", (BODY,))
        conn.commit()
        sql = "SELECT v FROM c WHERE k = ? AND expires > ?"
        rows = [
            ("L3 diskcache.Cache.get", per_call_us(lambda: cache.get("k"), n)),
            (
                "L3 bare sqlite3 SELECT",
                per_call_us(lambda: conn.execute(sql, ("k", 1.0)).fetchone(), n),
            ),
        ]
        cache.close()
        conn.close()
    return rows


async def misses(db: Path, rounds: int, per_round: int, profile: bool, levels: str) -> None:
    """Per round: CPU per never-asked search through the cache-on and cache-off apps."""
    import contextlib
    import random
    import shutil
    from dataclasses import replace

    from catalog import load_movies
    from engines import Reelsearch
    from queries import generate
    from reelsearch.config import Settings
    from reelsearch.http.app import create_app

    movies = load_movies(db)
    queries = generate(movies, per_kind=(rounds + 1) * per_round // 5 + 1, seed=13, min_votes=0)
    random.Random(13).shuffle(queries)
    rs = Reelsearch("")
    paths = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in queries))
    disk = Path(tempfile.mkdtemp(prefix="cache-overhead-"))
    base = Settings(
        database_url=f"sqlite:///{db.resolve()}", cache_warm_top=0, access_log=False,
        metrics_enabled=False, search_deadline_ms=10_000,
    )  # fmt: skip
    on = create_app(replace(base, cache=levels, cache_disk_path=str(disk)))
    off = create_app(replace(base, cache="off"))

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    def scope(target: str) -> dict[str, object]:
        path, _, query = target.partition("?")
        return {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": query.encode(), "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "headers": [(b"host", b"bench")],
        }  # fmt: skip

    async with contextlib.AsyncExitStack() as stack:
        for app in (on, off):
            await stack.enter_async_context(app.router.lifespan_context(app))
        fresh = iter(paths)
        for _ in range(300):  # warm both: snapshot pages, plans of common words
            target = next(fresh)
            await on(scope(target), receive, send)
            await off(scope(target), receive, send)
        print("| round | cache off us/miss | cache on us/miss | on - off (sums) "
              "| median of on - off per query | on / off |")  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        profiler = cProfile.Profile() if profile else None
        for round_ in range(rounds):
            spent: dict[str, list[float]] = {"on": [], "off": []}
            batch = [next(fresh) for _ in range(per_round)]
            for i, target in enumerate(batch):
                order = (("on", on), ("off", off)) if i % 2 else (("off", off), ("on", on))
                for name, app in order:
                    if profiler is not None and name == "on":
                        profiler.enable()
                    started = time.process_time()
                    await app(scope(target), receive, send)
                    spent[name].append(time.process_time() - started)
                    if profiler is not None and name == "on":
                        profiler.disable()
            a, b = (sum(spent[k]) / per_round * 1e6 for k in ("off", "on"))
            # A lazily built engine structure (a page of an index, a plan) costs whichever
            # app meets it first up to ~300 ms: the median of the paired differences is
            # the figure such outliers do not move.
            pairs = zip(spent["off"], spent["on"], strict=True)
            paired = statistics.median(y - x for x, y in pairs) * 1e6
            print(f"| {round_ + 1} | {a:.1f} | {b:.1f} | {b - a:+.1f} | {paired:+.1f} "
                  f"| {b / a:.3f} |")  # fmt: skip
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    shutil.rmtree(disk, ignore_errors=True)


async def one_app(db: Path, levels: str, count: int) -> None:
    """CPU per never-asked search through one app, and the full collections' part of it."""
    import gc
    import random
    import shutil

    from catalog import load_movies
    from engines import Reelsearch
    from queries import generate
    from reelsearch.config import Settings
    from reelsearch.http.app import create_app

    queries = generate(load_movies(db), per_kind=(count + 600) // 5 + 1, seed=29, min_votes=0)
    random.Random(29).shuffle(queries)
    rs = Reelsearch("")
    paths = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in queries))
    disk = Path(tempfile.mkdtemp(prefix="cache-overhead-"))
    settings = Settings(
        database_url=f"sqlite:///{db.resolve()}", cache=levels, cache_disk_path=str(disk),
        cache_warm_top=0, access_log=False, metrics_enabled=False, search_deadline_ms=10_000,
    )  # fmt: skip
    app = create_app(settings)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        pass

    def scope(target: str) -> dict[str, object]:
        path, _, query = target.partition("?")
        return {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": query.encode(), "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "headers": [(b"host", b"bench")],
        }  # fmt: skip

    collected = [0.0, 0.0, 0.0]  # started at, seconds, count

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected[0] = time.process_time()
        elif info["generation"] == 2:
            collected[1] += time.process_time() - collected[0]
            collected[2] += 1

    async with app.router.lifespan_context(app):
        fresh = iter(paths)
        for _ in range(500):  # warm: snapshot pages, plans of common words
            await app(scope(next(fresh)), receive, send)
        gc.callbacks.append(on_collection)
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.process_time()
        for n in range(count):
            await app(scope(next(fresh)), receive, send)
            if n % 200 == 0:
                await asyncio.sleep(0)  # the loop's own housekeeping, as a server's
        took = (time.process_time() - started) / count * 1e6
        after = resource.getrusage(resource.RUSAGE_SELF)
        gc.callbacks.remove(on_collection)
    shutil.rmtree(disk, ignore_errors=True)
    system = (after.ru_stime - usage.ru_stime) / count * 1e6
    faults = (after.ru_minflt - usage.ru_minflt) / count
    print(f"| {levels} | {took:.1f} | {system:.1f} | {faults:.1f} | {collected[2]:.0f} "
          f"| {collected[1] / count * 1e6:.1f} |")  # fmt: skip


def cold_http(args: argparse.Namespace) -> None:
    """Per server: median req/s and server CPU per request over the rounds."""
    import contextlib
    import random
    import statistics
    import sys

    from catalog import load_movies
    from engines import Reelsearch
    from load import Target
    from procs import REELSEARCH_CMD, reelsearch_server
    from queries import generate
    from zipf_load import measured, server_pid, use_ports, write

    use_ports(args.ports)
    db: Path = args.cold_http
    codes = {"now": REELSEARCH_CMD}
    if args.before_cmd:  # another install's server (a compiled one: its own venv)
        codes["before"] = args.before_cmd
    elif args.before_src:
        codes["before"] = (f"env PYTHONPATH={args.before_src} {sys.executable} -m reelsearch "
                           "serve --host {host} --port {port} --workers {workers}")  # fmt: skip
    # A server is (code, spec): "off", "memory,disk", or levels with settings added,
    # "memory,disk+REELSEARCH_CACHE_DOORKEEPER=false" (``--also``).
    specs = ["off", "memory,disk", *args.also]
    servers = [(code, spec) for code in codes for spec in specs]
    # A slice must outlast a run, or the cached server answers repeats.
    size = args.slice
    needed = size * len(servers) * args.rounds
    queries = generate(load_movies(db), per_kind=needed // 5 + 2000, seed=31, min_votes=0)
    random.Random(31).shuffle(queries)
    rs = Reelsearch("")
    paths = list(dict.fromkeys(rs.search_path(q.q, q.filters) for q in queries))
    assert len(paths) >= needed, f"{len(paths)} distinct searches, {needed} needed"
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {s: [] for s in servers}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        base: dict[tuple[str, str], str] = {}
        for number, (code, spec) in enumerate(servers):
            cache, *added = spec.split("+")
            name = f"{code}-{number}-{cache.replace(',', '-')}"
            env = {"REELSEARCH_CACHE": cache, "REELSEARCH_CACHE_WARM_TOP": "0",
                   "REELSEARCH_CACHE_TTL": "3600",
                   "REELSEARCH_CACHE_DISK_PATH": str(work / f"l3-{name}"),
                   **dict(setting.split("=", 1) for setting in added)}  # fmt: skip
            url, _ = stack.enter_context(
                reelsearch_server(name, f"sqlite:///{db.resolve()}", work, workers=2,
                                  cmd=codes[code], env=env)
            )  # fmt: skip
            base[(code, spec)] = url
        pids = {s: server_pid(url) for s, url in base.items()}
        fresh = iter(range(0, needed, size))
        for round_ in range(args.rounds):
            shift = round_ % len(servers)
            for server in servers[shift:] + servers[:shift]:
                start = next(fresh)
                paths_file = write(work / f"cold-{start}.txt", paths[start : start + size])
                result, cpu = measured(Target(str(server), base[server], paths_file),
                                       args.concurrency, args.seconds, pids[server])  # fmt: skip
                if result.requests >= size:  # repeats were measured: not a cold figure
                    print(f"round {round_} of {server}: the slice ran out, left out",
                          file=sys.stderr)  # fmt: skip
                    continue
                figures[server].append((result.rps, cpu or 0.0))
    print(f"| code | cache | req/s (median of {args.rounds}) | server CPU us/request | "
          "range |\n| --- | --- | ---: | ---: | ---: |")  # fmt: skip
    for (code, cache), rows in figures.items():
        cpus = [cpu for _, cpu in rows] or [0.0]
        print(f"| {code} | {cache} | {statistics.median([r for r, _ in rows] or [0.0]):,.0f} | "
              f"{statistics.median(cpus):.0f} | {min(cpus):.0f}-{max(cpus):.0f} |")  # fmt: skip
    for code in codes:
        off = statistics.median(cpu for _, cpu in figures[(code, "off")])
        for spec in specs[1:]:
            on = statistics.median(cpu for _, cpu in figures[(code, spec)])
            print(f"{code}: cache {spec} / off by server CPU per request: {off / on:.3f}x "
                  f"(+{on - off:.0f} us per miss)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    p.add_argument("-n", type=int, default=20_000)
    p.add_argument("--misses", type=Path, metavar="DB", help="cache on vs off per miss, on DB")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cold", type=int, default=1000, help="never-asked searches per round")
    p.add_argument("--profile", action="store_true", help="profile the cache-on misses")
    p.add_argument("--levels", default="memory,disk", help="the cache-on app's levels")
    p.add_argument("--one", metavar="LEVELS", help='with --misses: one app ("off" or levels)')
    p.add_argument("--cold-http", type=Path, metavar="DB", help="cache on vs off over HTTP")
    p.add_argument("--before-src", help="another checkout's src, measured alongside")
    p.add_argument("--before-cmd", help='another install\'s serve command, e.g. "/tmp/V/bin/'
                   'reelsearch serve --host {host} --port {port} --workers {workers}"')
    p.add_argument("--also", nargs="*", default=[], metavar="LEVELS+SETTING=VALUE",
                   help="with --cold-http: more cache-on servers, e.g. "
                   "memory,disk+REELSEARCH_CACHE_DOORKEEPER=false")  # fmt: skip
    p.add_argument("--ports", default="18300-18399")
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--slice", type=int, default=8000, help="never-asked searches per run")
    args = p.parse_args()
    if args.cold_http:
        cold_http(args)
        return
    if args.misses and args.one:
        print("| levels | CPU us/miss | of which system | minor faults/miss | full collections "
              "| of which full collections, us/miss |")  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        asyncio.run(one_app(args.misses, args.one, args.cold))
        return
    if args.misses:
        asyncio.run(misses(args.misses, args.rounds, args.cold, args.profile, args.levels))
        return
    rows = l1(args.n * 10) + asyncio.run(l2(args.redis, args.n)) + l3(args.n)
    print("| lookup of a 3 kB entry | us per hit |\n| --- | --- |")
    for name, us in rows:
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()
