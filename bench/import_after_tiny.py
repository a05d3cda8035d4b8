"""Sample import time into an empty catalog and into one whose last import held 3 rows.

Issue 11: the second took 313 s instead of about 2 s, because the ranking
``UPDATE ... FROM`` was planned with statistics describing the 3-row catalog.
Both imports run in this process, one after the other, on fresh files (or
fresh PostgreSQL databases), so their ratio is what to read.

    python bench/import_after_tiny.py [--rounds 3] [--pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from reelsearch.catalog.importers.sample import import_sample
from reelsearch.catalog.records import MovieRecord
from reelsearch.catalog.writer import open_import
from reelsearch.config import Settings


def import_tiny(settings: Settings) -> None:
    """A 3-movie catalog: what statistics computed on it describe."""
    with open_import(settings, "tiny") as job:
        job.add_movies(
            MovieRecord(source_key=f"tiny:{n}", title=f"Tiny {n}", year=2000) for n in range(3)
        )


def timed_sample(settings: Settings) -> float:
    started = time.perf_counter()
    import_sample(settings)
    return time.perf_counter() - started


def fresh_settings(backend: str, folder: Path, name: str, pg_url: str) -> Settings:
    if backend == "sqlite":
        return Settings(database_url=f"sqlite:///{folder / name}.db")
    import psycopg

    base, _, _ = pg_url.rpartition("/")
    admin = "postgresql://" + pg_url.split("://", 1)[1]
    database = f"rs_bench_tiny_{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    return Settings(database_url=f"{base}/{database}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-url", help="also measure PostgreSQL (a server URL)")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.pg_url else [])
    print("| backend | into an empty catalog (s) | into a 3-row catalog (s) | ratio |")
    print("| :-- | --: | --: | --: |")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            empty, tiny = [], []
            for n in range(args.rounds):
                settings = fresh_settings(backend, Path(tmp), f"empty{n}", args.pg_url)
                empty.append(timed_sample(settings))
                settings = fresh_settings(backend, Path(tmp), f"tiny{n}", args.pg_url)
                import_tiny(settings)
                tiny.append(timed_sample(settings))
            e, t = statistics.median(empty), statistics.median(tiny)
            print(f"| {backend} | {e:.2f} ({', '.join(f'{x:.2f}' for x in empty)}) "
                  f"| {t:.2f} ({', '.join(f'{x:.2f}' for x in tiny)}) | {t / e:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
