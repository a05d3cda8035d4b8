"""A PostgreSQL URL with a TLS option works for every driver the service uses."""

# Asserts read `expected == actual` (STYLE.md).
# ruff: noqa: SIM300

from __future__ import annotations

from dataclasses import replace

import pytest

from reelsearch.catalog.upgrade import check_servable
from reelsearch.config import Settings
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.query import parse_search

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("option", ["sslmode=disable", "ssl=disable"])
def test_tls_option_works_for_serving_and_admin(small_pg_settings: Settings, option: str) -> None:
    """Either spelling reaches the real server through asyncpg (search) and libpq (admin)."""
    settings = replace(small_pg_settings, database_url=f"{small_pg_settings.database_url}?{option}")
    assert check_servable(settings) is None  # psycopg, as `reelsearch serve` checks first
    engine = open_blocking_engine(settings)  # SQLAlchemy + asyncpg, as the workers search
    try:
        assert "The Matrix" == engine.search(parse_search([("q", "matrix")])).hits[0]["title"]
    finally:
        engine.close()
