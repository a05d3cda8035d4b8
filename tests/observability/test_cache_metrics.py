"""The result cache's counters and L1's size reach /metrics through the sampler."""

from __future__ import annotations

import time
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.http.app import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(client: TestClient) -> Samples:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_cache_events_and_memory_size_are_exported(small_settings: Settings) -> None:
    """A first sighting (computed, not stored), a miss that is stored, then a fast-path
    hit of the same search: after a sampler tick the event counters moved by exactly
    those, and L1's entries and bytes are what it holds."""
    settings = replace(
        small_settings, cache="memory", cache_warm_top=0, metrics_sample_seconds=0.05
    )
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            assert client.get("/v1/search", params={"q": "matrix"}).status_code == 200
        memory = client.app.state.result_cache.memory  # type: ignore[attr-defined]
        expected = [2.0, 1.0, 1.0, 1.0, 1.0, float(len(memory)), float(memory.bytes_used)]
        wanted = [
            ("reelsearch_cache_events_total", (("event", "miss"),)),
            ("reelsearch_cache_events_total", (("event", "first_sighting"),)),
            ("reelsearch_cache_events_total", (("event", "computed"),)),
            ("reelsearch_cache_events_total", (("event", "hit_memory"),)),
            ("reelsearch_cache_events_total", (("event", "fast_path"),)),
            ("reelsearch_cache_size", (("level", "memory"), ("unit", "entries"))),
            ("reelsearch_cache_size", (("level", "memory"), ("unit", "bytes"))),
        ]
        deadline = time.monotonic() + 5
        while True:
            found = _scrape(client)
            if [found.get(name) for name in wanted] == expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert expected == [found.get(name) for name in wanted]
    assert expected[5] == 1.0 and expected[6] > 100
