"""Every answer the engine gives for a query set, written out to compare two trees.

Why: a change that makes the engine cheaper must not change what it answers.
This runs each query of a bench query file in several variants (facets, sorts,
an offset, filters, a field subset, explain) plus hard hand-picked queries and
autocomplete, and writes one JSON line per answer: hits with every field,
totals, exactness, facets, cursor. Run it on two trees and ``cmp`` the files.

    python bench/engine_answers.py --db sample.db --queries q/queries.jsonl --out after.jsonl
    python bench/engine_answers.py --url postgresql+asyncpg://... --queries ... --out pg.jsonl
    PYTHONPATH=/tmp/before/src python bench/engine_answers.py ... --out before.jsonl
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.search import open_blocking_engine, parse_autocomplete, parse_search

# Each query runs with these extra parameters (the first: none).
VARIANTS: tuple[tuple[tuple[str, str], ...], ...] = (
    (),
    (("facets", "genres,decade"),),
    (("sort", "-year"),),
    (("offset", "10"),),
    (("genres", "Drama,Comedy"), ("facets", "genres")),
    (("year_from", "1980"), ("facets", "decade")),
    (("limit", "3"), ("fields", "id,title,highlights")),
    (("explain", "true"),),
    (("limit", "50"),),
    (("sort", "votes"), ("min_rating", "6")),
)
# Queries that take the rarer paths: typos, dropped words, exclusions, years, splits.
HARD = (
    "ngiht", "the barin", "matrix -matrix", "mat xyzzy", "x men 2", "la story", "gladiatr",
    "la pete", "spiderman", "spider man", "swat", "braindead", "strangelove", "confess i",
    "avventura", "amelie poulain", "18 5 episode", "night 1999", "the", "the 1984", "love",
    "star wars", "godfathr part", "almost angel", "night p", "xyzzy plugh", "the the",
    "shurayukihime", "\"the man\"", "mission impossible", "mi", "2001", "terminator ii",
    "a", "le r", "tell m", "inter", "amar", "fade to black", "zero ground", "alien dead",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a SQLite catalog")
    parser.add_argument("--url", help="or any catalog's database URL (PostgreSQL)")
    parser.add_argument("--queries", type=Path, required=True, help="from bench/queries.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--postings-max-movies",
        type=int,
        help="title_postings_max_movies (default: the tree's own default)",
    )
    args = parser.parse_args()
    url = args.url or f"sqlite:///{args.db.resolve()}"
    settings = Settings(database_url=url, search_deadline_ms=60_000)
    if args.postings_max_movies is not None:
        settings = replace(settings, title_postings_max_movies=args.postings_max_movies)
    cases: list[list[tuple[str, str]]] = []
    for line in args.queries.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        cases.append([("q", q["q"]), *((k, str(v)) for k, v in q.get("filters", {}).items())])
    cases += [[("q", text)] for text in HARD]
    engine = open_blocking_engine(settings)
    written = 0
    with args.out.open("w", encoding="utf-8") as out:
        for params in cases:
            for variant in VARIANTS:
                merged = list({**dict(params), **dict(variant)}.items())  # the variant's win
                try:
                    result = engine.search(parse_search(merged))
                except InvalidRequest as exc:
                    out.write(json.dumps({"params": merged, "error": str(exc)}) + "\n")
                    continue
                answer = {
                    "params": merged,
                    "hits": result.hits,
                    "total": result.total,
                    "exact": result.total_is_exact,
                    "facets": result.facets,
                    "cursor": result.next_cursor,
                    "all_words": result.all_words,
                }
                out.write(json.dumps(answer, sort_keys=True) + "\n")
                written += 1
            hits = engine.autocomplete(parse_autocomplete([params[0]]))
            out.write(json.dumps({"autocomplete": params[0], "hits": hits}, sort_keys=True) + "\n")
            written += 1
    engine.close()
    print(f"wrote {written} answers to {args.out}")


if __name__ == "__main__":
    main()
