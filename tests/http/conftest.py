"""The HTTP tests run on each backend: the app is the same, only the catalog URL differs."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from reelsearch.config import Settings
from reelsearch.http import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)  # see tests/conftest.py
    from starlette.testclient import TestClient

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend the app below runs on: every test that uses it runs on each."""
    return request.param  # type: ignore[no-any-return]


def backend_settings(request: pytest.FixtureRequest, backend: str, catalog: str) -> Settings:
    name = f"{catalog}_settings" if backend == "sqlite" else f"{catalog}_pg_settings"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def client(request: pytest.FixtureRequest, backend: str) -> Iterator[TestClient]:
    """The HTTP app on the small catalog, its lifespan running (engine opened)."""
    app = create_app(backend_settings(request, backend, "small"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def sample_client(request: pytest.FixtureRequest, backend: str) -> Iterator[TestClient]:
    """The HTTP app on the sample catalog, its lifespan running."""
    app = create_app(backend_settings(request, backend, "sample"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
