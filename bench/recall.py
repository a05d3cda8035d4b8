"""Known-item recall@1 and recall@10, per query kind, for each engine side by side.

Why: speed is worthless if the movie people typed is not in the answer. Every engine gets the
same queries (see queries.py) one at a time, and we count how often the one expected movie is
the first hit and how often it is in the first ten.

    python bench/recall.py --queries q/queries.jsonl --typesense-url URL --typesense-key KEY \
        --reelsearch-url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from engines import Engine, Reelsearch, Typesense
from mdtable import markdown_table
from queries import KINDS, Query, read_jsonl


@dataclass
class KindScore:
    n: int = 0
    at1: int = 0
    at10: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, rank: int | None, error: bool) -> None:
        self.n += 1
        self.errors += error
        if rank is not None:
            self.at1 += rank == 1
            self.at10 += rank <= 10


@dataclass
class EngineRecall:
    engine: str
    by_kind: dict[str, KindScore] = field(default_factory=dict)
    misses: list[dict[str, object]] = field(default_factory=list)

    def total(self) -> KindScore:
        out = KindScore()
        for s in self.by_kind.values():
            out.n, out.at1, out.at10 = out.n + s.n, out.at1 + s.at1, out.at10 + s.at10
            out.errors += s.errors
            out.latencies_ms += s.latencies_ms
        return out


def evaluate(engine: Engine, queries: Sequence[Query], limit: int = 10) -> EngineRecall:
    """Ask ``engine`` every query in turn and score where the expected movie landed."""
    result = EngineRecall(engine.name)
    with httpx.Client(
        base_url=engine.base_url, headers=dict(engine.headers), timeout=30.0
    ) as client:
        for query in queries:
            rank: int | None = None
            error = False
            ids: list[int] = []
            try:
                t0 = time.perf_counter()
                resp = client.get(engine.search_path(query.q, query.filters, limit))
                elapsed_ms = (time.perf_counter() - t0) * 1000
                resp.raise_for_status()
                ids = engine.hit_ids(resp.json())[:limit]
                rank = ids.index(query.expected_id) + 1 if query.expected_id in ids else None
            except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
                error = True
                ids = []
                result.misses.append(
                    {"engine": engine.name, "error": repr(exc)[:200], **_query_fields(query)}
                )
            score = result.by_kind.setdefault(query.kind, KindScore())
            score.add(rank, error)
            if not error:
                score.latencies_ms.append(elapsed_ms)
            if rank != 1 and not error:
                result.misses.append(
                    {"engine": engine.name, "rank": rank, "top": ids[:3], **_query_fields(query)}
                )
    return result


def _query_fields(query: Query) -> dict[str, object]:
    return {
        "kind": query.kind,
        "q": query.q,
        "filters": query.filters,
        "expected_id": query.expected_id,
        "title": query.title,
    }


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def recall_table(results: Sequence[EngineRecall]) -> str:
    headers = ["kind", "n"]
    for r in results:
        headers += [f"{r.engine} R@1", f"{r.engine} R@10"]
    if any(r.total().errors for r in results):
        headers += [f"{r.engine} errors" for r in results]
    kinds = [k for k in KINDS if any(k in r.by_kind for r in results)]
    kinds += sorted({k for r in results for k in r.by_kind} - set(kinds))
    rows: list[list[object]] = []
    for kind in [*kinds, "all"]:
        scores = [r.total() if kind == "all" else r.by_kind.get(kind, KindScore()) for r in results]
        row: list[object] = [f"**{kind}**" if kind == "all" else kind, scores[0].n]
        for s in scores:
            row += [_pct(s.at1, s.n), _pct(s.at10, s.n)]
        if len(headers) > 2 + 2 * len(results):
            row += [s.errors for s in scores]
        rows.append(row)
    return markdown_table(headers, rows)


def _quantile(values: Sequence[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.2f}"


def latency_table(results: Sequence[EngineRecall]) -> str:
    """Client-side latency of the recall queries, one at a time: which kinds cost the most."""
    headers = ["kind"]
    for r in results:
        headers += [f"{r.engine} p50 ms", f"{r.engine} p99 ms", f"{r.engine} max ms"]
    kinds = [k for k in KINDS if any(k in r.by_kind for r in results)]
    rows: list[list[object]] = []
    for kind in [*kinds, "all"]:
        row: list[object] = [f"**{kind}**" if kind == "all" else kind]
        for r in results:
            lat = (r.total() if kind == "all" else r.by_kind.get(kind, KindScore())).latencies_ms
            row += [_quantile(lat, 0.5), _quantile(lat, 0.99), _quantile(lat, 1.0)]
        rows.append(row)
    return markdown_table(headers, rows)


def write_misses(results: Sequence[EngineRecall], path: Path) -> None:
    lines = (json.dumps(m, ensure_ascii=False) + "\n" for r in results for m in r.misses)
    path.write_text("".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Known-item recall of each engine.")
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--typesense-url")
    parser.add_argument("--typesense-key")
    parser.add_argument("--reelsearch-url")
    parser.add_argument("--misses", type=Path, help="write every non-first-hit query here")
    args = parser.parse_args()
    engines: list[Engine] = []
    if args.typesense_url:
        engines.append(Typesense(args.typesense_url, args.typesense_key or ""))
    if args.reelsearch_url:
        engines.append(Reelsearch(args.reelsearch_url))
    if not engines:
        parser.error("give --typesense-url and/or --reelsearch-url")
    queries = read_jsonl(args.queries)
    results = [evaluate(engine, queries) for engine in engines]
    print(recall_table(results))
    print()
    print(latency_table(results))
    if args.misses:
        write_misses(results, args.misses)


if __name__ == "__main__":
    main()
