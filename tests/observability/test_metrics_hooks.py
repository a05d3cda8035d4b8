"""Cumulative statistics read from elsewhere become counters that never run backwards."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from reelsearch.observability.metrics import Metrics
from reelsearch.observability.tally import Deltas


def scraped(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render(0.0)[0].decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_cache_hook_exports_totals_growth_and_sizes() -> None:
    """The result cache's hook: event totals and evictions as counters that grow by what the
    cache counted between samples; entries and bytes per level as gauges."""
    metrics = Metrics()
    totals = {"hits": 5, "misses": 2}
    levels = {"memory": {"entries": 3, "bytes": 100, "evictions": 1}}
    sample = metrics.track_cache(lambda: totals, lambda: levels)
    sample()
    totals["hits"] = 8
    levels["memory"].update(entries=2, evictions=4)
    sample()
    found = scraped(metrics)
    assert [
        found[("reelsearch_cache_events_total", (("event", "hits"),))],
        found[("reelsearch_cache_events_total", (("event", "misses"),))],
        found[("reelsearch_cache_evictions_total", (("level", "memory"),))],
        found[("reelsearch_cache_size", (("level", "memory"), ("unit", "entries")))],
        found[("reelsearch_cache_size", (("level", "memory"), ("unit", "bytes")))],
    ] == [8, 2, 4, 2, 100]


def test_deltas_count_from_a_reset_total() -> None:
    """A total that went down (its owner restarted) counts again from its new value."""
    deltas = Deltas()
    assert [
        list(deltas.growth([("a", 5)])),
        list(deltas.growth([("a", 7)])),
        list(deltas.growth([("a", 7)])),
        list(deltas.growth([("a", 3)])),
    ] == [[("a", 5)], [("a", 2)], [], []]


def test_requests_reach_the_instruments_on_flush() -> None:
    """Requests are tallied in the worker and added to the instruments by flush: the
    counts, the latency buckets (cumulative in the exposition) and the sum."""
    metrics = Metrics()
    for seconds in (0.0004, 0.003, 0.003, 7.0):
        metrics.observe_request("/v1/search", "GET", 200, seconds)
    assert ("reelsearch_http_requests_total", ()) not in scraped(metrics)
    metrics.flush()
    found = scraped(metrics)
    route = (("route", "/v1/search"),)
    assert [
        found[
            (
                "reelsearch_http_requests_total",
                (("method", "GET"), ("route", "/v1/search"), ("status", "200")),
            )
        ],
        found[("reelsearch_http_request_duration_seconds_bucket", (("le", "0.0005"), *route))],
        found[("reelsearch_http_request_duration_seconds_bucket", (("le", "0.005"), *route))],
        found[("reelsearch_http_request_duration_seconds_bucket", (("le", "5.0"), *route))],
        found[("reelsearch_http_request_duration_seconds_bucket", (("le", "+Inf"), *route))],
        round(found[("reelsearch_http_request_duration_seconds_sum", route)], 4),
    ] == [4, 1, 3, 3, 4, 7.0064]
