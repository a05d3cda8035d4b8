"""Statement times by shape, write transactions and the import's figures at /metrics of an
app on a real PostgreSQL catalog (asyncpg's query logger on every pooled connection)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from conftest import SMALL_TITLES, write_imdb
from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.config import Settings
from reelsearch.db import run_transaction
from reelsearch.http.app import create_app

pytestmark = pytest.mark.postgres


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    return {
        s.labels[label]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_postgres_statements_transactions_and_import_are_exported(
    postgres_databases: Callable[[str], str], tmp_path: Path
) -> None:
    """A search's statements are timed under their shapes; two transactions run through
    the pool's stats count as two commits; the import's rows and bad rows (none) show."""
    url = postgres_databases("obs_metrics")
    files = write_imdb(tmp_path / "dump", SMALL_TITLES)
    report = import_imdb(Settings(database_url=url), list(files.values()))
    settings = Settings(database_url=url, cache="off", metrics_sample_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        # A year among the words: a text match statement (a small match alone, or
        # filtered, is answered by the title postings and hit rows, decision 0043).
        path = "/v1/search?q=matrix+1999&facets=genres"
        assert client.get(path).status_code == 200
        engine: Any = client.app.state.engine  # type: ignore[attr-defined]
        pool = getattr(engine, "engine", engine).pool

        async def unit(conn: Any) -> int:
            return int(await conn.fetchval("SELECT 1"))

        for _ in range(2):
            assert (
                client.portal.call(  # type: ignore[union-attr]
                    lambda: run_transaction(
                        pool.connection, unit, idempotent=True, stats=pool.transactions
                    )
                )
                == 1
            )
        deadline = time.monotonic() + 5
        while True:
            text = client.get("/metrics").text
            shapes = by_label(text, "reelsearch_db_query_duration_seconds_count", "shape")
            outcomes = by_label(text, "reelsearch_db_transactions_total", "outcome")
            figures = by_label(text, "reelsearch_catalog_import", "figure")
            done = outcomes.get("committed") == 2 and "bad_rows" in figures
            if (done and shapes.get("text_match")) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert shapes.get("text_match", 0) >= 1 and shapes.get("facets", 0) >= 1
    assert outcomes.get("committed") == 2
    assert [report.rows_read, 0] == [figures["rows_read"], figures["bad_rows"]]
