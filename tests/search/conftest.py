"""Every search test runs on each backend: the same cases, so neither can drift.

``small_engine`` and ``sample_engine`` (which the root conftest defines for
SQLite) are parametrized here over SQLite and PostgreSQL; the PostgreSQL
catalogs are imported by the real PostgreSQL importer from the same files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from reelsearch.config import Settings
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.engine import BlockingSearchEngine

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend the engines below run on: every test that uses one runs on each."""
    return request.param  # type: ignore[no-any-return]


def backend_settings(request: pytest.FixtureRequest, backend: str, catalog: str) -> Settings:
    """Settings of the ``catalog`` ("small" or "sample") on ``backend``."""
    name = f"{catalog}_settings" if backend == "sqlite" else f"{catalog}_pg_settings"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def small_engine(request: pytest.FixtureRequest, backend: str) -> Iterator[BlockingSearchEngine]:
    """A search engine on the small catalog, on each backend."""
    engine = open_blocking_engine(backend_settings(request, backend, "small"))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def sample_engine(request: pytest.FixtureRequest, backend: str) -> Iterator[BlockingSearchEngine]:
    """A search engine on the sample catalog, on each backend."""
    engine = open_blocking_engine(backend_settings(request, backend, "sample"))
    yield engine
    engine.close()


@pytest.fixture
def any_engine(request: pytest.FixtureRequest, backend: str) -> BlockingSearchEngine:
    """Parametrize indirectly with "small_engine" or "sample_engine"."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def capped_engine(request: pytest.FixtureRequest, backend: str) -> Iterator[BlockingSearchEngine]:
    """The sample with totals counted exactly only up to 100, on each backend."""
    settings = replace(backend_settings(request, backend, "sample"), max_exact_total=100)
    engine = open_blocking_engine(settings)
    yield engine
    engine.close()
