"""The web page's fixtures: the real app on the sample catalog served by uvicorn on
loopback, Debian's chromium driven by Playwright (one browser per test session), and
a real Redis database for the session store.

CI must run the browser and Redis tests for real: there a missing chromium or Redis
fails the run; elsewhere their tests are skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_port import redis_url
from reelsearch.config import Settings
from reelsearch.http import create_app
from thread_server import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
# No GPU, no QUIC, nothing fetched in the background: a quiet, reproducible browser.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
REDIS_URL = os.environ.get("REELSEARCH_TEST_REDIS_URL", redis_url(5))


def skip_or_fail(problem: str) -> None:
    """Under CI a missing service is a failure; on a laptop, a skip with the reason."""
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def web_settings(sample_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The sample catalog with sessions in a private SQLite file."""
    sessions = tmp_path_factory.mktemp("web") / "sessions.db"
    return dataclasses.replace(sample_settings, session_path=str(sessions))


@pytest.fixture(scope="session")
def web_url(web_settings: Settings) -> Iterator[str]:
    """Base URL of the real app on the sample catalog, served on loopback."""
    with serve_in_thread(create_app(web_settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the browser tests (each test opens its own context).

    Module scope, not session: Playwright's sync API keeps an event loop running
    in this thread until it stops, and pytest-asyncio's tests after it need none.
    """
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis database, emptied before and after each test."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        skip_or_fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()
