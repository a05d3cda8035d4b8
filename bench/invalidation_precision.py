"""Write invalidation of the result cache: how much a write of 10 movies drops, and that
nothing stale remains (issue 12 part 5; docs/decisions/0015-cache-invalidation.md).

1. A copy of the catalog; the 10,000 most popular searches of the Zipf stream
   bench/zipf_load.py replays (bench/queries.py's known-item queries, in the same
   popularity order), plus a few filter-only ones, computed into the cache: L1 memory,
   L2 Redis (``--redis-url``) and L3 disk, each big enough to hold them all.
2. 10 movies written through the catalog's own writer (catalog/writes.py, the
   documents API's transaction), one write each: new titles made of words of popular
   searches, popular movies renamed, one popular movie deleted.
3. After each write the cache follows it as a server worker does (the engine's
   catalog poll, then ``ResultCache.ensure_current``: the change log, the matcher).
4. Every one of the searches is then computed afresh, bypassing the cache; each entry
   still held in any level must equal it byte for byte. Entries whose answer really
   changed are the least any rule must drop: the report gives both.

    python bench/invalidation_precision.py --db ./sample.db --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from catalog import load_movies
from engines import Reelsearch
from queries import generate
from reelsearch.cache.keys import canonical_key, canonical_query
from reelsearch.cache.service import ResultCache
from reelsearch.catalog.documents import DeleteMovie, PutMovie
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.writes import CatalogWriter
from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.http.params import query_pairs
from reelsearch.http.search_cache import SearchResponder, catalog_change_source
from reelsearch.search.backends import open_search_engine
from reelsearch.search.normalize import normalize
from reelsearch.search.query import parse_search

# Filter-only searches (no words): a write drops all of them (decision 0015).
BROWSE = [
    "/v1/search?genres=Drama&limit=10",
    "/v1/search?genres=Comedy&sort=-rating&limit=10",
    "/v1/search?year_from=1990&year_to=1999&limit=10",
    "/v1/search?min_votes=1000&sort=-votes&limit=10",
    "/v1/search?genres=Action,Comedy&genres_mode=all&limit=10",
    "/v1/search?facets=genres,decade&limit=10",
    "/v1/search?year_from=2000&sort=-year&limit=20",
    "/v1/search?min_rating=8&limit=10",
]


def popular_searches(db: Path, count: int, seed: int) -> list[str]:
    """The ``count`` most popular distinct searches, in the Zipf stream's order
    (bench/zipf_load.py: queries shuffled with the seed, popularity by position)."""
    movies = load_movies(db)
    queries = generate(movies, per_kind=count // 5 + 200, seed=seed, min_votes=0)
    random.Random(seed).shuffle(queries)
    engine = Reelsearch("")
    paths = list(dict.fromkeys(engine.search_path(q.q, q.filters) for q in queries))
    return [p for p in paths if is_valid(p)][: count - len(BROWSE)] + BROWSE


def is_valid(path: str) -> bool:
    """Whether the API answers ``path`` (a 400 is never cached: "-word" alone is one)."""
    try:
        parse_search(query_pairs(urlsplit(path).query.encode()))
    except InvalidRequest:
        return False
    return True


def planned_writes(searches: list[str], db: Path, seed: int) -> list[list[PutMovie | DeleteMovie]]:
    """Ten writes of one movie each: six new titles of words from popular searches, three
    popular movies renamed, one popular movie deleted."""
    rng = random.Random(seed)
    words = Counter(
        word
        for path in searches[:500]
        for word in normalize(dict(query_pairs(urlsplit(path).query.encode())).get("q", "")).split()
        if len(word) >= 3
    )
    common = [w for w, _ in words.most_common(40)]
    import sqlite3

    with sqlite3.connect(db) as conn:
        popular = conn.execute(
            "SELECT source_key, title, year, votes FROM movies ORDER BY votes DESC LIMIT 50"
        ).fetchall()
    writes: list[list[PutMovie | DeleteMovie]] = []
    for n in range(6):
        title = " ".join(rng.sample(common, 2)).title() + f" {['Returns', 'Again', 'II'][n % 3]}"
        record = MovieRecord(f"bench:new{n}", title, year=2020 + n, votes=rng.randint(10, 5000))
        writes.append([PutMovie(record)])
    for key, title, year, votes in popular[1:4]:
        renamed = f"{title} {rng.choice(['Redux', 'Reloaded', 'Director Cut'])}"
        writes.append([PutMovie(MovieRecord(key, renamed, year=year, votes=votes))])
    writes.append([DeleteMovie(popular[0][0])])
    return writes


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="rs-invalidation-"))
    try:
        db = work / args.db.name  # the stored word index is named after it
        shutil.copy(args.db, db)
        for words in args.db.parent.glob(args.db.name + ".words-*"):  # the stored word index
            shutil.copy(words, work / words.name)
        searches = popular_searches(db, args.count, args.seed)
        levels = "memory,redis,disk" if args.redis_url else "memory,disk"
        settings = Settings(
            database_url=f"sqlite:///{db}", cache=levels, redis_url=args.redis_url,
            cache_namespace=f"rs-inv-{time.time_ns()}", cache_memory_bytes=1 << 30,
            cache_disk_bytes=1 << 30, cache_disk_path=str(work / "l3"), cache_ttl=3600,
            cache_warm_top=0, search_deadline_ms=60_000,  # a loaded machine: no timeouts
        )  # fmt: skip
        engine = await open_search_engine(settings)
        cache = ResultCache.open(settings)
        assert cache is not None
        cache.rules.read = engine.rules_version
        cache.doc_count = lambda word: engine.snapshot.vocabulary.doc_count(word)
        cache.change_source = catalog_change_source(engine)
        responder = SearchResponder(settings, cache, cache.counters)
        responder.engine = engine
        await cache.ensure_current(engine.snapshot.version)

        queries = {}
        for path in searches:
            query = canonical_query(parse_search(query_pairs(urlsplit(path).query.encode())))
            queries[path] = query
        started = time.perf_counter()
        for path in searches:
            await responder.warm_one(urlsplit(path).query.encode())
        print(f"warmed {len(searches):,} searches in {time.perf_counter() - started:.1f} s",
              flush=True)  # fmt: skip
        keys = {path: canonical_key(cache.prefix, q) for path, q in queries.items()}
        distinct = set(keys.values())
        assert cache.memory is not None
        before = {}
        for path, key in keys.items():
            entry = cache.memory.lookup(key, time.time())
            assert entry is not None, path
            before[path] = entry.body
        held_before = {lv.name: await held(lv, distinct) for lv in cache.levels}

        writer = CatalogWriter(settings)
        apply_ms: list[float] = []
        for operations in planned_writes(searches, db, args.seed):
            report = await writer.write(operations)
            await engine.refresh_if_changed()
            if args.explain:
                await explain(cache, engine, report.catalog_version, operations)
            t0 = time.perf_counter()
            await cache.ensure_current(engine.snapshot.version)
            apply_ms.append((time.perf_counter() - t0) * 1000)
            assert report.catalog_version == engine.snapshot.version

        stale: Counter[str] = Counter()
        kept: Counter[str] = Counter()
        changed = 0
        for path, query in queries.items():
            fresh = (await responder._compute(engine, query)).body
            changed += fresh != before[path]
            for level in cache.levels:
                entry = await level.get(keys[path])
                if entry is None:
                    continue
                kept[level.name] += 1
                if entry.body != fresh:
                    stale[level.name] += 1
                    print(f"STALE in {level.name}: {path}", flush=True)
        total = len(distinct)
        print()
        print(f"catalog {args.db.name}: {total:,} distinct cached searches "
              f"({len(BROWSE)} filter-only); 10 writes of one movie each")  # fmt: skip
        print(f"answers that really changed: {changed} ({changed / total:.2%})")
        print("| level | held before | dropped | share dropped | stale left |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for level in cache.levels:
            had = held_before[level.name]
            left = kept[level.name]
            print(f"| {level.name} | {had:,} | {had - left:,} | {(had - left) / had:.2%} | "
                  f"{stale[level.name]} |")  # fmt: skip
        print(
            f"invalidation per write (all levels, this process): median "
            f"{sorted(apply_ms)[len(apply_ms) // 2]:.1f} ms, max {max(apply_ms):.1f} ms"
        )
        print(f"counters: {dict(cache.counters.invalidated_entries)}")
        for level in cache.levels:
            await level.clear()
        await cache.close()
        await engine.close()
        if sum(stale.values()):
            sys.exit(f"{sum(stale.values())} stale entries")
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run_http(args: argparse.Namespace) -> None:
    """The same, end to end: a server (1 worker) warmed over HTTP, the writes through the
    documents API (PUT/DELETE /v1/movies/...), every search asked again over HTTP and
    compared with a fresh search of the catalog in this process."""
    import httpx

    from procs import ServerProcess
    from reelsearch.http.search_cache import render_search

    work = Path(tempfile.mkdtemp(prefix="rs-invalidation-http-"))
    token = "invalidation-bench-admin-token-0123456789"
    admin = {"authorization": f"Bearer {token}"}
    try:
        db = work / args.db.name
        shutil.copy(args.db, db)
        for words in args.db.parent.glob(args.db.name + ".words-*"):
            shutil.copy(words, work / words.name)
        searches = popular_searches(db, args.count, args.seed)
        writes = planned_writes(searches, db, args.seed)
        url = f"sqlite:///{db}"
        env = {
            **os.environ, "REELSEARCH_DATABASE_URL": url, "REELSEARCH_ADMIN_TOKEN": token,
            "REELSEARCH_CACHE": "memory,redis,disk" if args.redis_url else "memory,disk",
            "REELSEARCH_REDIS_URL": args.redis_url,
            "REELSEARCH_CACHE_NAMESPACE": f"rs-inv-{time.time_ns()}",
            "REELSEARCH_CACHE_MEMORY_BYTES": str(1 << 30), "REELSEARCH_CACHE_TTL": "3600",
            "REELSEARCH_CACHE_DISK_PATH": str(work / "l3"), "REELSEARCH_CACHE_WARM_TOP": "0",
            "REELSEARCH_CATALOG_POLL_SECONDS": "0.2", "REELSEARCH_SEARCH_DEADLINE_MS": "10000",
        }  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        argv = ["reelsearch", "serve", "--host", "127.0.0.1", "--port", str(args.port),
                "--workers", "1"]  # fmt: skip
        with ServerProcess("invalidation", argv, work / "server.log", env) as server:
            server.wait_healthy(f"{base}/ready", 60)
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

                async def ask_all() -> dict[str, bytes]:
                    bodies: dict[str, bytes] = {}
                    pending = iter(searches)

                    async def worker() -> None:
                        for path in pending:
                            response = await client.get(path)
                            assert response.status_code == 200, (path, response.text[:200])
                            bodies[path] = response.content

                    await asyncio.gather(*(worker() for _ in range(8)))
                    return bodies

                async def memory_entries() -> tuple[int, dict[str, object]]:
                    stats = (await client.get("/v1/admin/cache", headers=admin)).json()
                    return int(stats["levels"][0]["entries"]), stats

                await ask_all()
                await ask_all()  # a second sighting also writes the disk level
                held_before, _ = await memory_entries()
                version = 0
                for operations in writes:
                    for operation in operations:
                        path = f"/v1/movies/{operation.source_key}"
                        if isinstance(operation, PutMovie):
                            record = operation.record
                            document = {"title": record.title, "year": record.year,
                                        "votes": record.votes}  # fmt: skip
                            response = await client.put(path, json=document, headers=admin)
                        else:
                            response = await client.delete(path, headers=admin)
                        assert response.status_code in (200, 201), response.text
                        version = int(response.json()["catalog_version"])
                deadline = time.monotonic() + 60
                while True:
                    held_after, stats = await memory_entries()
                    if stats["catalog_version"] == version:
                        break
                    assert time.monotonic() < deadline, "the server never followed the writes"
                    await asyncio.sleep(0.2)
                served = await ask_all()
        settings = Settings(database_url=url, cache="off", search_deadline_ms=60_000)
        engine = await open_search_engine(settings)
        stale = 0
        for path in searches:
            query = canonical_query(parse_search(query_pairs(urlsplit(path).query.encode())))
            if render_search(await engine.search(query)) != served[path]:
                stale += 1
                print(f"STALE over HTTP: {path}", flush=True)
        await engine.close()
        dropped = held_before - held_after
        print(f"end to end over HTTP: {held_before:,} entries in memory, {dropped:,} dropped "
              f"({dropped / held_before:.2%}) by 10 writes through the documents API; "
              f"{len(searches):,} searches asked again: {stale} stale answers")  # fmt: skip
        print(f"counters: invalidations {stats['invalidations']}, "
              f"entries {stats['invalidated_entries']}")  # fmt: skip
        if stale:
            sys.exit(f"{stale} stale answers")
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def explain(cache: ResultCache, engine, version, operations) -> None:  # type: ignore[no-untyped-def]
    """Which tags this write reaches in L1, and how many entries carry each."""
    from reelsearch.cache.invalidation import ChangeMatcher

    assert cache.change_source is not None and cache.memory is not None
    changes = await cache.change_source(version - 1, version)
    matcher = ChangeMatcher(changes or [], cache.doc_count)
    reached = matcher.reached_tags(cache.memory.tag_union())
    per_tag: Counter[str] = Counter()
    for entry, _, _ in cache.memory._entries.values():
        per_tag.update(reached.intersection(entry.tags))
    what = ", ".join(f"{t} {n}" for t, n in per_tag.most_common(8))
    print(f"  write {version} {operations[0]}: {what}", flush=True)


async def held(level, keys: set[str]) -> int:  # type: ignore[no-untyped-def]
    return sum([await level.get(key) is not None for key in keys])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", type=Path, required=True, help="catalog to copy (SQLite)")
    p.add_argument("--redis-url", default="", help="adds the Redis level (L2)")
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--explain", action="store_true", help="print the tags each write reaches")
    p.add_argument("--http", action="store_true", help="end to end: a server, the documents API")
    p.add_argument("--port", type=int, default=18220)
    args = p.parse_args()
    asyncio.run(run_http(args) if args.http else run(args))


if __name__ == "__main__":
    main()
