"""CPU per search, in-process, over a query file: first pass (per-word caches cold) and two more.

Why: a change to what the engine reads per query word (vocabulary, typo index) shows as
CPU per search long before it shows under HTTP load. Run it against two trees in turn
(``PYTHONPATH=/tmp/ts-before/src`` for an older one) and compare the passes.

    python bench/search_cpu.py --db /tmp/sample.db tests/relevance/*.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from reelsearch.config import Settings
from reelsearch.search.query import parse_search
from reelsearch.search.sqlite import SqliteSearchEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("queries", type=Path, nargs="+", help='JSON lines with a "q" each')
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    engine = SqliteSearchEngine(Settings(database_url=f"sqlite:///{args.db.resolve()}"))
    queries = [
        parse_search([("q", json.loads(line)["q"])])
        for path in args.queries
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    passes = []
    for _ in range(args.passes):
        started = time.process_time()
        for query in queries:
            engine.search(query)
        passes.append((time.process_time() - started) / len(queries) * 1e3)
    print(f"{len(queries)} searches: " + ", ".join(f"{ms:.3f}" for ms in passes) + " ms each")
    engine.close()


if __name__ == "__main__":
    main()
