"""The search deadline and disconnect cancellation on a real server (uvicorn on loopback).

The app is the real one on the sample catalog; one search is made slow by
running a statement that never ends through the search's own reader before
the real algorithm, so the deadline, the progress handler, the move to a
thread and the disconnect watch are all the real ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from reelsearch.config import Settings
from reelsearch.http import create_app
from reelsearch.search.query import SearchQuery
from reelsearch.search.readers import Reader
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.tiered import TieredSearch
from thread_server import serve_in_thread

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
SLOW_WORD = "slowsearch"


class _SlowOnCue(TieredSearch):
    """The real search; for q=slowsearch, a never-ending statement first. Notes how it ended."""

    ended: list[tuple[str, float]]

    async def search(self, db: Reader, snapshot: CatalogSnapshot, query: SearchQuery) -> Any:
        if query.words != (SLOW_WORD,):
            return await super().search(db, snapshot, query)
        try:
            await db.row(ENDLESS)
        except Exception as exc:
            self.ended.append((type(exc).__name__, time.monotonic()))
            raise
        raise AssertionError("the endless statement ended")


@contextmanager
def _serving(settings: Settings) -> Iterator[tuple[str, _SlowOnCue]]:
    app: Starlette = create_app(settings)
    with serve_in_thread(app) as base:
        engine: Any = app.state.engine
        slow = _SlowOnCue(settings, engine.tiered.dialect)
        slow.ended = []
        engine.tiered = slow
        yield base, slow


def _health_times(base: str, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    """(answered at, seconds taken) of each /health asked until ``stop``."""
    with httpx.Client(base_url=base, timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            out.append((time.monotonic(), time.monotonic() - started))
            time.sleep(0.01)


@pytest.mark.parametrize("in_threads", [False, True], ids=["inline", "threads"])
def test_slow_search_ends_at_the_deadline_while_health_stays_fast(
    sample_settings: Settings, in_threads: bool
) -> None:
    """A search past its 400 ms deadline gets a 503 with Retry-After in time; /health and
    another search on the same worker answer meanwhile, each well within the deadline."""
    # No result cache: the slow search must run each time (a cached answer from another
    # test of the sample catalog would skip it).
    settings = replace(
        sample_settings, search_deadline_ms=400, search_in_threads=in_threads, cache="off"
    )
    with _serving(settings) as (base, slow), httpx.Client(base_url=base, timeout=10) as client:
        stop, health = threading.Event(), []
        pinger = threading.Thread(target=_health_times, args=(base, stop, health))
        pinger.start()
        time.sleep(0.05)
        started = time.monotonic()
        others: list[tuple[int, float]] = []

        def other_search() -> None:
            time.sleep(0.1)  # while the slow one runs
            with httpx.Client(base_url=base, timeout=10) as other:
                begun = time.monotonic()
                status = other.get("/v1/search", params={"q": "casablanca"}).status_code
                others.append((status, time.monotonic() - begun))

        searcher = threading.Thread(target=other_search)
        searcher.start()
        response = client.get("/v1/search", params={"q": SLOW_WORD})
        took = took_all = time.monotonic() - started
        searcher.join()
        stop.set()
        pinger.join()
    assert response.status_code == 503
    assert (
        response.json()["error"]["code"],
        response.headers["retry-after"],
    ) == ("deadline_exceeded", "1")
    assert 0.4 <= took < 1.2, took
    assert [(name,) for name, _ in slow.ended] == [("SearchTimedOut",)]
    # /health kept answering while the slow search ran (a loaded 2-core machine
    # answers a few a tenth of a second), each well within the deadline.
    during = [took for at, took in health if started < at < started + took_all]
    assert len(during) >= 3, health
    assert max(took for _, took in health) < 0.3, health
    assert [status for status, _ in others] == [200]
    assert others[0][1] < 0.3, others


@pytest.mark.parametrize("cache", ["off", "memory"])
def test_a_client_that_disconnects_cancels_its_search(
    sample_settings: Settings, cache: str
) -> None:
    """A client that gives up after 0.3 s stops its search then, not at the 10 s deadline,
    whether the search runs directly or as the result cache's single-flight computation."""
    settings = replace(sample_settings, search_deadline_ms=10_000, cache=cache)
    with _serving(settings) as (base, slow):
        with httpx.Client(base_url=base, timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
            client.get("/v1/search", params={"q": SLOW_WORD})
        gave_up = time.monotonic()
        waited = time.monotonic() + 5
        while not slow.ended and time.monotonic() < waited:
            time.sleep(0.01)
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/v1/search", params={"q": "casablanca"}).status_code == 200
    assert [name for name, _ in slow.ended] == ["SearchCancelled"]
    assert slow.ended[0][1] - gave_up < 1.0
