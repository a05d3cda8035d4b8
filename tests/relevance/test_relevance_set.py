"""The relevance set: every query of sample_queries.jsonl through the real engine, both backends.

recall@1 and recall@10 per category and overall must reach the floors in floors.json,
and a floor can only be raised: no committed version of floors.json may hold a higher one.
``pytest -s tests/relevance`` prints the table.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# The set's builder, beside this file (pytest puts this directory on sys.path):
# one list of categories and one pair of query files.
from build_sample_set import CATEGORIES, HAND, HERE
from build_sample_set import OUT as QUERIES

from reelsearch.config import Settings
from reelsearch.errors import InvalidRequest
from reelsearch.search.engine import BlockingSearchEngine
from reelsearch.search.normalize import normalize
from reelsearch.search.query import parse_search

FLOORS = HERE / "floors.json"
FLOORS_IN_REPO = "tests/relevance/floors.json"
METRICS = ("recall_at_1", "recall_at_10")
# Where a query equal to its title is the point: the year or the operator is the test.
EXACT_ALLOWED = frozenset({"year", "operators"})
MIN_QUERIES, MIN_PER_CATEGORY = 300, 30

Floors = dict[str, dict[str, float]]


def read_queries(path: Path = QUERIES) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def query_key(q: str) -> str:
    return " ".join(q.lower().split())


def catalog_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """One read of the catalog on either backend."""
    if settings.backend == "postgresql":
        import psycopg

        with psycopg.connect(settings.postgres_dsn) as pg:
            return pg.execute(sql).fetchall()
    with sqlite3.connect(settings.sqlite_path) as lite:
        rows = lite.execute(sql).fetchall()
    lite.close()
    return rows


def source_ids(settings: Settings) -> dict[str, tuple[int, str, int | None]]:
    """Source key -> (id, title, year) of every sample movie, in one query."""
    rows = catalog_rows(
        settings, "SELECT source_key, id, title, year FROM movies WHERE source_key LIKE 'ggplot2%'"
    )
    return {key: (movie_id, title, year) for key, movie_id, title, year in rows}


# -- the file --------------------------------------------------------------------


def test_the_set_is_big_enough_and_well_formed() -> None:
    """>= 300 queries, every category with >= 30, well-formed rows, no query twice."""
    queries = read_queries()
    assert len(queries) >= MIN_QUERIES
    fields = {"q", "category", "expect", "title", "year", "how"}
    assert [] == [row for row in queries if set(row) != fields]
    counts = Counter(row["category"] for row in queries)
    assert set(CATEGORIES) == set(counts)
    assert {} == {c: n for c, n in counts.items() if n < MIN_PER_CATEGORY}
    twice = [k for k, n in Counter(query_key(row["q"]) for row in queries).items() if n > 1]
    assert [] == twice
    assert [] == [
        row for row in queries if row["how"] != "hand" and not row["how"].startswith("rule:")
    ]


def test_no_query_is_just_its_title() -> None:
    """A query equal to its title after normalization is exact match, not these categories."""
    same = [
        row
        for row in read_queries()
        if row["category"] not in EXACT_ALLOWED and normalize(row["q"]) == normalize(row["title"])
    ]
    assert [] == same


def test_every_hand_query_is_in_the_set() -> None:
    """build_sample_set.py keeps every hand-written query (regenerate after editing them)."""
    built = {(query_key(r["q"]), r["expect"]) for r in read_queries() if r["how"] == "hand"}
    hand = {(query_key(r["q"]), r["expect"]) for r in read_queries(HAND)}
    assert hand == built


def test_every_expected_movie_is_in_the_sample(sample_settings: Settings) -> None:
    """Each ``expect`` names a sample movie, with the title and year the row says."""
    movies = source_ids(sample_settings)
    wrong = [
        row
        for row in read_queries()
        if movies.get(row["expect"], (0, None, None))[1:] != (row["title"], row["year"])
    ]
    assert [] == wrong


# -- recall --------------------------------------------------------------------


@dataclass
class Tally:
    """Hits at rank 1 and in the top 10 over the queries of one category."""

    queries: int = 0
    at_1: int = 0
    at_10: int = 0
    misses: list[str] = field(default_factory=list)

    def recall(self, metric: str) -> float:
        hits = self.at_1 if metric == "recall_at_1" else self.at_10
        return 100.0 * hits / self.queries if self.queries else 0.0


def measure(engine: BlockingSearchEngine, settings: Settings) -> dict[str, Tally]:
    """Run every query; per category and ``all``, how often the expected movie came back."""
    ids = source_ids(settings)
    titles = {movie_id: f"{title} ({year})" for movie_id, title, year in ids.values()}
    tallies = {name: Tally() for name in (*CATEGORIES, "all")}
    for row in read_queries():
        expected = ids[row["expect"]][0]
        try:
            hits = engine.search(parse_search([("q", row["q"]), ("limit", "10")])).hits
            found = [hit["id"] for hit in hits]
        except InvalidRequest as exc:  # a query the engine refuses is a miss, said why
            found, hits = [], [{"id": 0, "title": f"refused: {exc}", "year": None}]
        for tally in (tallies[row["category"]], tallies["all"]):
            tally.queries += 1
            tally.at_1 += found[:1] == [expected]
            tally.at_10 += expected in found
        if found[:1] != [expected]:
            rank = found.index(expected) + 1 if expected in found else None
            got = "; ".join(titles.get(hit["id"], str(hit.get("title"))) for hit in hits[:3])
            tallies[row["category"]].misses.append(
                f"  {row['q']!r} -> {row['title']} ({row['year']}): "
                f"{f'rank {rank}' if rank else 'not in top 10'}; got {got or 'nothing'}"
            )
    return tallies


def render(backend: str, tallies: dict[str, Tally]) -> str:
    lines = [
        f"relevance set on {backend}: recall per category (percent)",
        f"  {'category':12} {'queries':>7} {'@1':>6} {'@10':>6}",
    ]
    for name, tally in tallies.items():
        lines.append(
            f"  {name:12} {tally.queries:7} {tally.recall('recall_at_1'):6.1f} "
            f"{tally.recall('recall_at_10'):6.1f}"
        )
    return "\n".join(lines)


def read_floors(text: str) -> Floors:
    floors: Floors = json.loads(text)
    return floors


@pytest.fixture(scope="module")
def tallies(
    sample_engine: BlockingSearchEngine, sample_backend_settings: Settings
) -> Iterator[dict[str, Tally]]:
    yield measure(sample_engine, sample_backend_settings)


def test_recall_reaches_the_floors(backend: str, tallies: dict[str, Tally]) -> None:
    """recall@1 and recall@10, per category and overall, are at least the committed floors."""
    print("\n" + render(backend, tallies))
    floors = read_floors(FLOORS.read_text("utf-8"))
    below = [
        (name, metric, round(tally.recall(metric), 1), floors[name][metric])
        for name, tally in tallies.items()
        for metric in METRICS
        # A floor has one decimal; a recall a hair under it rounds to it.
        if tally.recall(metric) + 1e-9 < floors[name][metric]
    ]
    if below:
        report = [render(backend, tallies), "below the floor (category, metric, measured, floor):"]
        report += [f"  {b}" for b in below]
        for name in sorted({b[0] for b in below} - {"all"}) or list(CATEGORIES):
            report.append(f"misses in {name}:")
            report += tallies[name].misses
        pytest.fail("\n".join(report), pytrace=False)


def test_floors_name_every_category_with_one_decimal() -> None:
    """floors.json holds both metrics for every category and ``all``, percentages, one decimal."""
    floors = read_floors(FLOORS.read_text("utf-8"))
    assert {*CATEGORIES, "all"} == set(floors)
    for values in floors.values():
        assert set(METRICS) == set(values)
        assert all(0 <= v <= 100 and math.isclose(v, round(v, 1)) for v in values.values())


def test_floors_are_never_lowered() -> None:
    """No floor is below one committed earlier: a floor can only be raised."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: the history of floors.json can't be read")
    top = subprocess.run(
        [git, "rev-parse", "--show-toplevel"], cwd=HERE, capture_output=True, text=True
    )
    if top.returncode != 0:
        pytest.skip("not a git checkout: the history of floors.json can't be read")
    root = top.stdout.strip()
    log = subprocess.run(
        [git, "log", "--format=%H", "--", FLOORS_IN_REPO],
        cwd=root, capture_output=True, text=True, check=True,
    )  # fmt: skip
    current = read_floors(FLOORS.read_text("utf-8"))
    lowered = []
    for commit in log.stdout.split():
        shown = subprocess.run(
            [git, "show", f"{commit}:{FLOORS_IN_REPO}"], cwd=root, capture_output=True, text=True
        )
        if shown.returncode != 0:  # the commit deleted the file
            continue
        for name, values in read_floors(shown.stdout).items():
            for metric, floor in values.items():
                now = current.get(name, {}).get(metric)
                if now is None or now < floor:
                    lowered.append(f"{name} {metric}: {now} now, {floor} in {commit[:10]}")
    assert [] == lowered
