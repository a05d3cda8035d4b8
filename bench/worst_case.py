"""The worst server time a hostile search can provoke: run the adversarial set, report the max.

Each case is a ``q`` built to be expensive (Unicode that multiplies under
normalization, very long words, many words that each match but not
together, scripts without spaces, many quotes or minus signs); each runs
in-process on the engine, cold (first time seen) and again, and the
answer (200, 400 too_long, 503 deadline) and its wall time are printed.

    python bench/worst_case.py --db reelsearch.db [--runs 2]
    python bench/worst_case.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/movies

It uses only what both the code before issue 10 and after it provide
(``open_blocking_engine``, ``parse_search``), so the same script measures both:
``PYTHONPATH=/path/to/old/src python bench/worst_case.py ...``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest, ReelsearchError
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.query import parse_search

_COMMON = [
    "love",
    "night",
    "man",
    "war",
    "day",
    "life",
    "girl",
    "story",
    "time",
    "dead",
    "house",
    "black",
    "world",
    "blood",
    "city",
    "death",
    "king",
    "last",
    "little",
    "lady",
    "home",
    "big",
    "great",
    "dark",
    "heart",
    "women",
    "street",
    "new",
    "first",
    "american",
    "secret",
]
_THAI = "ภาพยนตร์"  # "movie": Thai writes words without spaces


def adversarial_queries() -> dict[str, str]:
    """Case name -> q. Every q is within the raw 256-character limit."""
    return {
        "256 x U+FDFA (769 words normalized)": "\ufdfa" * 256,
        "8 x U+FDFA (25 words normalized)": "\ufdfa" * 8,
        "256 x U+FB03 ligature (one 768-letter word)": "\ufb03" * 256,
        "one 256-letter word": ("abcdefghijklmnopqrstuvwxy" * 11)[:256],
        "one 256-letter word, last typed (prefix)": "x "
        + ("qwertyuiopasdfghjklzxcvbnm" * 10)[:253],
        "85 x Hangul syllable (255 jamo, one word)": "\ud55c" * 85,
        "32 common words, no title has them all": " ".join(_COMMON[:32]),
        "51 x 'love' (repeated common word)": " ".join(["love"] * 51),
        "32 x 'love'": " ".join(["love"] * 32),
        "64 stop words": " ".join(["the", "a", "of", "and"] * 16),
        "32 stop words": " ".join(["the", "a", "of", "and"] * 8),
        "32 misspelt 7-letter words (typo search each)": " ".join(
            w[:3] + "x" + w[3:] + "zz" for w in _COMMON[:32]
        )[:256],
        "Thai run without spaces": _THAI * 32,
        "Chinese run without spaces": "电影" * 128,
        "64 quoted one-letter phrases": '"a" ' * 64,
        "32 quoted two-word phrases": '"the man" ' * 16,
        "star then 62 exclusions": "star "
        + " ".join(f"-{c}{c}" for c in "bcdfghjklmnpqrstvwxz" * 4)[:250],
        "star then 31 exclusions": "star "
        + " ".join(f"-{c}{c}" for c in "bcdfghjklmnpqrstvwxz" * 2)[:123],
        "9-letter misspelt words x 25": " ".join(["nightmarx"] * 25),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, help="a SQLite catalog")
    parser.add_argument("--url", help="or a database URL (postgresql+asyncpg://...)")
    parser.add_argument("--runs", type=int, default=2, help="times each case runs (first is cold)")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{args.db.resolve()}"
    engine = open_blocking_engine(Settings(database_url=url))
    worst = ("", 0.0)
    try:
        for name, q in adversarial_queries().items():
            for run in range(args.runs):
                started = time.perf_counter()
                try:
                    result = engine.search(parse_search([("q", q)]))
                    answer = f"200 total={result.total}"
                except InvalidRequest as exc:
                    answer = f"{exc.status_code} {exc.code}"
                except ReelsearchError as exc:  # a timeout: 503 over HTTP
                    answer = f"503 {type(exc).__name__}"
                took = time.perf_counter() - started
                print(f"{took * 1000:9.1f} ms  run {run + 1}  {answer:24s}  {name}", flush=True)
                if took > worst[1]:
                    worst = (name, took)
    finally:
        engine.close()
    print(f"worst: {worst[1] * 1000:.1f} ms ({worst[0]})")


if __name__ == "__main__":
    main()
