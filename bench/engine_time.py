"""Engine time and recall per query kind, in-process: no HTTP, no peer.

Per kind: CPU time per search, then the engine's stages (wall time, µs) as it
reports them (``search/timing.py``). For quick relevance and cost checks while
changing the engine; the figures that count are the side-by-side ones from
``bench/run.py``.

    python bench/engine_time.py --db reelsearch.db --queries queries.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from reelsearch.config import Settings
from reelsearch.search.backends import open_search_engine
from reelsearch.search.query import parse_search

try:  # absent in older code, which this script also measures (PYTHONPATH=old/src)
    from reelsearch.search.timing import SearchStages, report_stages_to
except ImportError:  # pragma: no cover
    report_stages_to = None  # type: ignore[assignment]


def main() -> None:
    asyncio.run(_main())


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="from bench/queries.py")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument(
        "--profile", type=Path, help="write a pyinstrument profile of the warm passes here (text)"
    )
    parser.add_argument(
        "--stop-after",
        choices=("setup", "first"),
        help="stop after opening the engine and reading the queries, or after the first "
        "pass: run under valgrind --tool=callgrind, the differences between runs are the "
        "instructions of the first pass and of the warm ones (steady on a loaded machine)",
    )
    parser.add_argument(
        "--freeze-heap",
        action="store_true",
        help="gc.freeze() once the engine is open, as a server's lifespan does "
        "(cache/heap.py): full collections then skip the catalog snapshot, whose "
        "walks otherwise land on a few searches and move counts by a few per cent",
    )
    parser.add_argument(
        "--postings-max-movies",
        type=int,
        help="title_postings_max_movies (default: the tree's own default)",
    )
    args = parser.parse_args()
    # On an event loop in this thread, as a server worker runs it (no hand-off to time).
    # A generous deadline: a loaded machine must not turn a slow search into an error here.
    settings = Settings(database_url=f"sqlite:///{args.db.resolve()}", search_deadline_ms=10_000)
    if args.postings_max_movies is not None:
        settings = replace(settings, title_postings_max_movies=args.postings_max_movies)
    engine = await open_search_engine(settings)
    cases = []
    for line in args.queries.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        params = [("q", q["q"]), *((k, str(v)) for k, v in q.get("filters", {}).items())]
        cases.append((q, parse_search(params)))
    if args.freeze_heap:
        gc.freeze()
    if args.stop_after == "setup":
        await engine.close()
        return
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    times: list[float] = []
    for q, query in cases:
        started = time.process_time()
        ids = [hit["id"] for hit in (await engine.search(query)).hits]
        times.append(time.process_time() - started)
        tally = found[q["kind"]]
        tally[0] += ids[:1] == [q["expected_id"]]
        tally[1] += q["expected_id"] in ids
        tally[2] += 1
    if args.stop_after == "first":
        await engine.close()
        return
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    by_kind: dict[str, float] = defaultdict(float)
    stages_of_kind: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    kind = ""

    def add_stages(stages: SearchStages) -> None:
        for name, seconds in stages.items():
            stages_of_kind[kind][name] += seconds

    if report_stages_to is not None:
        report_stages_to(add_stages)
    started = time.process_time()
    for _ in range(args.passes):
        for q, query in cases:
            kind = q["kind"]
            began = time.process_time()
            await engine.search(query)
            by_kind[kind] += time.process_time() - began
    warm = (time.process_time() - started) / args.passes / len(cases)
    if profiler is not None:
        profiler.stop()
        args.profile.write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")
    times.sort()
    print(
        f"first pass: mean {statistics.fmean(times) * 1e6:.0f} us, "
        f"p50 {statistics.median(times) * 1e3:.2f} ms, "
        f"p99 {times[int(len(times) * 0.99)] * 1e3:.2f} ms; warm mean {warm * 1e6:.0f} us"
    )
    await engine.close()
    for kind, (r1, r10, n) in found.items():
        micros = by_kind[kind] / args.passes / n * 1e6
        parts = " ".join(
            f"{name} {seconds / args.passes / n * 1e6:.0f}"
            for name, seconds in stages_of_kind[kind].items()
        )
        print(
            f"{kind:11s} R@1 {r1 / n:6.1%}  R@10 {r10 / n:6.1%}  (n={n})  "
            f"warm {micros:4.0f} us ({parts})"
        )


if __name__ == "__main__":
    main()
