"""Per-lookup cost of library-backed cache levels against minimal hand-written ones.

What docs/decisions/0011-result-cache.md records: is a well-kept library
cheap enough on the hot path? Each line times N hits of a 3 kB entry.

- L1: our MemoryLevel.lookup vs cachetools.LRUCache (byte-bounded via getsizeof),
  vs a bare OrderedDict get + move_to_end (the floor).
- L2: redis-py asyncio GET (hiredis parser, pooled) vs a raw asyncio socket
  speaking RESP (the floor for one round trip).
- L3: diskcache.Cache.get vs a bare sqlite3 SELECT on a WAL file.

    python bench/cache_overhead.py --redis redis://127.0.0.1:6379/8
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    p.add_argument("-n", type=int, default=20_000)
    args = p.parse_args()
    rows = l1(args.n * 10) + asyncio.run(l2(args.redis, args.n)) + l3(args.n)
    print("| lookup of a 3 kB entry | us per hit |\n| --- | --- |")
    for name, us in rows:
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()
