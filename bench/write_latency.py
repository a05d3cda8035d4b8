"""Latency of documents-API writes over HTTP: one movie (PUT), 1,000 movies (bulk), and
how long until a search finds what was written.

Starts ``reelsearch serve`` (one worker, result cache off, an admin token) on the catalog
given, then, one request at a time from this process:

- ``PUT /v1/movies/bench:...`` of a new movie, ``--writes`` times (each a new version);
- ``PUT`` of an existing movie with its votes changed (an update), ``--writes`` times;
- ``POST /v1/movies/bulk`` of 1,000 new movies, ``--bulk-runs`` times;
- visibility: a PUT of a title with a word new to the catalog, then ``/v1/search`` for
  that word with a typo every 10 ms until it is found (poll interval + snapshot reload).

WRITES INTO THE CATALOG: give it a copy (``cp imdb1m.db* /tmp/x/``, ``CREATE DATABASE x
TEMPLATE rs_1m``). Prints one markdown row per catalog.

    python bench/write_latency.py --database-url sqlite:////tmp/x/imdb1m.db --label "1 M" \
        [--writes 200] [--bulk-runs 5] [--port 18150]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from procs import ServerProcess  # noqa: E402
from reelsearch.catalog.schema import upgrade_schema  # noqa: E402
from reelsearch.config import Settings  # noqa: E402

TOKEN = "bench-" + "x" * 40
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
BULK_LINES = 1_000


def _movie(n: int, word: str = "") -> dict[str, object]:
    return {"title": f"Benchmark Picture {word or n}", "year": 2000 + n % 25,
            "runtime_min": 90 + n % 60, "rating": round(5 + (n % 50) / 10, 1),
            "votes": 1000 + n, "genres": ["Drama", "Comedy"][: 1 + n % 2],
            "alt_titles": [f"Bench Alt {n}"]}  # fmt: skip


def _ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _timed(client: httpx.Client, method: str, path: str, body: bytes) -> float:
    started = time.perf_counter()
    response = client.request(method, path, content=body, headers=ADMIN)
    elapsed = time.perf_counter() - started
    assert response.status_code in (200, 201), (response.status_code, response.text[:300])
    return elapsed


def measure(
    base: str, writes: int, bulk_runs: int, visibility_runs: int, poll_seconds: float = 1.0
) -> dict[str, object]:
    run = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=base, timeout=60.0) as client:
        created = [
            _timed(client, "PUT", f"/v1/movies/bench:{run}-{n}", orjson.dumps(_movie(n)))
            for n in range(writes)
        ]
        updated = []
        for n in range(writes):
            movie = {**_movie(n), "votes": 5000 + n}
            updated.append(
                _timed(client, "PUT", f"/v1/movies/bench:{run}-{n}", orjson.dumps(movie))
            )
        bulk = []
        for r in range(bulk_runs):
            lines = b"\n".join(
                orjson.dumps({"source": "bench", "source_id": f"{run}-b{r}-{n}", **_movie(n)})
                for n in range(BULK_LINES)
            )
            bulk.append(_timed(client, "POST", "/v1/movies/bulk", lines))
        visible = []
        for v in range(visibility_runs):
            # Right after a search found the last one, the poller has just run: without a
            # pause every write would wait one whole interval. Write at a random phase.
            time.sleep(random.uniform(0, poll_seconds))
            # A word no title holds, letters only (the typo index skips words with digits).
            word = (
                "qzv"
                + run.translate(str.maketrans("0123456789", "ghijklmnop"))
                + "abcde"[v % 5]
                + "x"
            )
            _timed(client, "PUT", f"/v1/movies/bench:{run}-v{v}", orjson.dumps(_movie(v, word)))
            written = time.perf_counter()
            # One letter wrong mid-word, and a finished word (not the prefix typed last):
            # only the typo index can find it, so this waits for the snapshot reload.
            typo = f"{word[:6]}{'z' if word[6] != 'z' else 'y'}{word[7:]} benchmark"
            while True:
                hits = client.get("/v1/search", params={"q": typo}).json()["hits"]
                if any(word in hit["title"] for hit in hits):  # this one, not an earlier one
                    break
                assert time.perf_counter() - written < 30, "the write never became visible"
                time.sleep(0.01)
            visible.append(time.perf_counter() - written)
    return {"created": _ms(created), "updated": _ms(updated), "bulk": _ms(bulk),
            "visible": _ms(visible)}  # fmt: skip


def reload_times(database_url: str, rounds: int) -> tuple[float, float]:
    """Median seconds of the poller's refresh after a 1-movie write (the write-only path:
    mapped index kept, facets moved) and of a full snapshot load (a fresh engine)."""
    from reelsearch.catalog.documents import PutMovie
    from reelsearch.catalog.records import MovieRecord
    from reelsearch.catalog.writes import CatalogWriter
    from reelsearch.search.backends import open_blocking_engine

    settings = Settings(database_url=database_url)
    engine = open_blocking_engine(settings)
    writer = CatalogWriter(settings)
    refreshes, full = [], []
    try:
        for n in range(rounds):
            record = MovieRecord(source_key=f"bench:reload-{uuid.uuid4().hex}", title=f"Reload {n}",
                                 year=1990 + n, genres=("Drama",))  # fmt: skip
            engine.run(lambda _, r=record: writer.write([PutMovie(r)]))
            started = time.perf_counter()
            assert engine.refresh_if_changed()
            refreshes.append(time.perf_counter() - started)
            started = time.perf_counter()
            open_blocking_engine(settings).close()
            full.append(time.perf_counter() - started)
    finally:
        engine.close()
    return statistics.median(refreshes), statistics.median(full)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--label", default="")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--bulk-runs", type=int, default=5)
    parser.add_argument("--visibility-runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=18150)
    parser.add_argument(
        "--reload-only",
        action="store_true",
        help="time the refresh after a write vs a full snapshot load, in process",
    )
    args = parser.parse_args()
    if args.reload_only:
        upgrade_schema(Settings(database_url=args.database_url))
        after_write, full = reload_times(args.database_url, 5)
        backend = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
        print(f"| {backend} | {args.label} | {after_write * 1000:.0f} | {full * 1000:.0f} |")
        return
    env = {**os.environ, "REELSEARCH_DATABASE_URL": args.database_url,
           "REELSEARCH_ADMIN_TOKEN": TOKEN, "REELSEARCH_CACHE": "off",
           "REELSEARCH_ACCESS_LOG": "false"}  # fmt: skip
    argv = ["reelsearch", "serve", "--host", "127.0.0.1", "--port", str(args.port),
            "--workers", "1"]  # fmt: skip
    base = f"http://127.0.0.1:{args.port}"
    log = Path("/tmp") / f"write_latency-{args.port}.log"
    # A catalog imported before migration 0005 is not ready for this code: migrate the copy.
    upgrade_schema(Settings(database_url=args.database_url))
    with ServerProcess("reelsearch", argv, log, env) as server:
        server.wait_healthy(f"{base}/ready", 300)
        result = measure(base, args.writes, args.bulk_runs, args.visibility_runs)
    backend = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    cells = [f"{result[k][0]:.1f} / {result[k][1]:.1f}"  # type: ignore[index]
             for k in ("created", "updated", "bulk", "visible")]  # fmt: skip
    print(f"| {backend} | {args.label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
