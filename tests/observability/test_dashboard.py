"""The Grafana dashboard and the Prometheus example name only metrics reelsearch exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reelsearch.cache.counters import CacheCounters
from reelsearch.observability.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_NAME = re.compile(r"reelsearch_[a-z_]+")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total")
_CACHE_EVENT = re.compile(r'reelsearch_cache_events_total\{event(=~?)"([^"]+)"')


def exported_names() -> set[str]:
    """Every family name a Metrics object exports, the cache's hook included."""
    metrics = Metrics()
    sample = metrics.track_cache(lambda: {"hits": 1}, lambda: {"memory": {"entries": 1}})
    sample()
    metrics.imported_at = 0.0
    text = metrics.render(1.0)[0].decode()
    return {base_name(line.split()[2]) for line in text.splitlines() if line.startswith("# TYPE")}


def base_name(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_dashboard_query_names_an_exported_metric() -> None:
    """Each reelsearch_* name in a panel query is a metric /metrics exports."""
    dashboard = json.loads((DEPLOY / "grafana" / "reelsearch.json").read_text())
    used = {
        base_name(name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
        for name in _NAME.findall(target["expr"])
    }
    assert sorted(used - exported_names()) == []
    assert len(used) >= 15
    # The families of every instrument issue 13 names: RED, stages, cache, pool, process.
    assert {
        "reelsearch_cache_shared_size",
        "reelsearch_db_query_duration_seconds",
        "reelsearch_db_transactions",
        "reelsearch_catalog_import",
        "reelsearch_gc_pause_seconds",
        "reelsearch_event_loop_lag_seconds",
    } <= used


def test_every_cache_event_in_the_dashboard_is_one_the_cache_counts() -> None:
    """A panel's ``event="..."`` names an event the cache exports, and an ``event=~"..."``
    matches at least one: a misspelt event makes an empty graph, not an error."""
    counters = CacheCounters()
    counters.hits.update(["memory", "redis", "disk"])
    counters.invalidations["tag"] += 1
    events = set(counters.event_totals())
    dashboard = json.loads((DEPLOY / "grafana" / "reelsearch.json").read_text())
    found = [
        event
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
        for event in _CACHE_EVENT.findall(target["expr"])
    ]
    assert len(found) >= 4
    for operator, value in found:
        if operator == "=":
            assert value in events
        else:
            assert [e for e in events if re.fullmatch(value, e)], value


def test_prometheus_example_scrapes_metrics() -> None:
    """The scrape configuration has the reelsearch job reading /metrics, and its example
    alerts name exported metrics only."""
    text = (DEPLOY / "prometheus.yml").read_text()
    assert [
        line.strip().lstrip("- ")
        for line in text.splitlines()
        if line.strip().lstrip("- ").startswith(("job_name:", "metrics_path:"))
    ] == ["job_name: reelsearch", "metrics_path: /metrics"]
    used = {base_name(name) for name in _NAME.findall(text)}
    assert sorted(used - exported_names()) == []
