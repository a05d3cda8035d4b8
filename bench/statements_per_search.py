"""Statements the engine sends per search, by query kind, in-process on SQLite.

Why: a miss costs about a statement's fixed price per statement it sends, so the
count per kind shows a path that asks the index more often than it needs to
(typo queries bisecting their words, tiers read twice). Works on older trees too
(``PYTHONPATH=old/src``), to compare.

    python bench/statements_per_search.py --db sample.db --queries q/queries.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from pathlib import Path

from reelsearch.config import Settings
from reelsearch.search.backends import open_search_engine
from reelsearch.search.query import parse_search
from reelsearch.search.readers import RecordingReader, SqliteReader, Statement


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="from bench/queries.py")
    args = parser.parse_args()
    settings = Settings(database_url=f"sqlite:///{args.db.resolve()}", search_deadline_ms=10_000)
    engine = await open_search_engine(settings)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in args.queries.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        params = [("q", q["q"]), *((k, str(v)) for k, v in q.get("filters", {}).items())]
        seen: list[Statement] = []
        with engine.pool.connection() as conn:  # type: ignore[attr-defined]
            reader = RecordingReader(SqliteReader(conn), seen)
            await engine.tiered.search(reader, engine.snapshot, parse_search(params))  # type: ignore[attr-defined]
        tally[q["kind"]][0] += len(seen)
        tally[q["kind"]][1] += 1
    await engine.close()
    for kind, (statements, searches) in tally.items():
        print(f"{kind:11s} {statements / searches:.2f} statements per search (n={searches})")


if __name__ == "__main__":
    asyncio.run(_main())
