"""Figures of a load-test run, per second and in total, as JSON and a self-contained HTML page.

Latency is counted from each request's intended start (``latency``), so a
stall that delayed later requests is charged to them too; the server's own
share (from the actual send) is reported beside it. Per second: the target
rate (requests intended), the achieved rate (answers received), p50/p95/p99,
the error rate, and the service's CPU (cores) and resident memory scraped
from ``/metrics``. The stress scenario's knee and the recovery scenario's
error window and time back to normal p99 are read from those series.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reelsearch.loadtest.scenarios import KEYSTROKE_SECONDS, Scenario

# Seconds with fewer answers than this say little about a percentile: not a knee.
MIN_ANSWERS_FOR_KNEE = 20
# The knee and the recovery need this many seconds in a row, not one noisy second.
SUSTAINED_SECONDS = 2
# "Back to normal": p99 within this factor of the p99 before the restart.
NORMAL_P99_FACTOR = 1.5


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def read_jsonl(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def analyse(run: Path, scenario: dict[str, Any], events: dict[str, Any]) -> dict[str, Any]:
    """The run's figures from ``requests.jsonl`` and ``metrics.jsonl`` in ``run``."""
    requests = read_jsonl(run / "requests.jsonl")
    scraped = read_jsonl(run / "metrics.jsonl")
    if not requests:
        raise RuntimeError(f"the run sent no request; see {run / 'locust.log'}")
    t0 = min(r[0] for r in requests)
    seconds = int(max(r[2] for r in requests) - t0) + 1
    intended = [0] * seconds
    by_second: list[list[tuple[float, bool, int]]] = [[] for _ in range(seconds)]
    # The rate the visitors' plan asks for, whether or not the service keeps up: each
    # visitor acts once per think time plus the typing its bursts are scheduled for,
    # and an action makes ``per_action`` requests (both measured over the run).
    plan = Scenario(**scenario)
    actions = max(1, sum(1 for r in requests if r[6]))
    per_action = len(requests) / actions
    typing = sum(1 for r in requests if r[4] == "autocomplete") * KEYSTROKE_SECONDS / actions
    per_visitor = per_action / (plan.think_seconds + typing)
    for want, _, end, status, _, error, _ in requests:
        intended[min(seconds - 1, int(want - t0))] += 1
        by_second[int(end - t0)].append(((end - want) * 1000, error, status))
    series = []
    for second, answers in enumerate(by_second):
        latencies = sorted(a[0] for a in answers)
        errors = sum(1 for a in answers if a[1])
        planned = plan.users_at(second) * per_visitor if second < plan.duration else 0.0
        series.append({
            "t": second, "target_rps": round(planned, 1),
            "scheduled_rps": intended[second], "achieved_rps": len(answers),
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p95_ms": round(percentile(latencies, 0.95), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "errors": errors, "error_rate": round(errors / len(answers), 4) if answers else 0.0,
        })  # fmt: skip
    _add_resources(series, scraped, t0)
    latency = sorted((r[2] - r[0]) * 1000 for r in requests)
    service = sorted((r[2] - r[1]) * 1000 for r in requests)
    errors = sum(1 for r in requests if r[5])
    duration = max(1e-9, max(r[2] for r in requests) - t0)
    kinds: dict[str, dict[str, Any]] = {}
    for kind in sorted({r[4] for r in requests}):
        mine = sorted((r[2] - r[0]) * 1000 for r in requests if r[4] == kind)
        statuses: dict[str, int] = {}
        for r in requests:
            if r[4] == kind:
                statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1
        kinds[kind] = {
            "requests": len(mine),
            "p50_ms": round(percentile(mine, 0.5), 2),
            "p99_ms": round(percentile(mine, 0.99), 2),
            "statuses": statuses,
        }
    summary = {
        "requests": len(requests),
        "errors": errors,
        "error_rate": round(errors / len(requests), 4),
        "target_rps": round(sum(p["target_rps"] for p in series) / len(series), 1),
        "requests_per_action": round(per_action, 2),
        "achieved_rps": round(len(requests) / duration, 1),
        "p50_ms": round(percentile(latency, 0.50), 2),
        "p95_ms": round(percentile(latency, 0.95), 2),
        "p99_ms": round(percentile(latency, 0.99), 2),
        "service_p99_ms": round(percentile(service, 0.99), 2),
        "max_concurrency": scenario["users"],
        "cache_hit_rate": _hit_rate(scraped),
    }
    cpu = [s["cpu_cores"] for s in series if s.get("cpu_cores") is not None]
    rss = [s["rss_mb"] for s in series if s.get("rss_mb") is not None]
    if cpu:
        summary["cpu_cores_mean"] = round(sum(cpu) / len(cpu), 2)
        summary["rss_mb_max"] = round(max(rss), 1)
    result: dict[str, Any] = {"scenario": scenario, "summary": summary, "kinds": kinds,
                              "events": events, "series": series}  # fmt: skip
    if scenario["name"] == "stress":
        result["knee"] = find_knee(series, scenario, t0)
    if scenario["name"] == "recovery" and "restart_started" in events:
        result["recovery"] = find_recovery(series, events["restart_started"] - t0)
    return result


def _add_resources(series: list[dict[str, Any]], scraped: list[Any], t0: float) -> None:
    """CPU cores (from the growth of CPU seconds) and memory, per second of the series."""
    previous: dict[str, Any] | None = None
    for line in scraped:
        if "cpu_seconds" not in line:
            continue
        second = int(line["t"] - t0)
        if 0 <= second < len(series):
            series[second]["rss_mb"] = round(line.get("rss_bytes", 0) / 2**20, 1)
            if previous is not None and line["t"] > previous["t"]:
                used = (line["cpu_seconds"] - previous["cpu_seconds"]) / (
                    line["t"] - previous["t"])  # fmt: skip
                series[second]["cpu_cores"] = round(max(0.0, used), 3)
                hits = line.get("cache_hits", 0) - previous.get("cache_hits", 0)
                asked = hits + line.get("cache_misses", 0) - previous.get("cache_misses", 0)
                if asked > 0:  # the cache's hit rate in that second
                    series[second]["hit_rate"] = round(hits / asked, 4)
        previous = line


def _hit_rate(scraped: list[dict[str, Any]]) -> float | None:
    """The result cache's hit rate over the run, if the service exports it (issue 12)."""
    ends = [s for s in scraped if "cache_hits" in s or "cache_misses" in s]
    if len(ends) < 2:
        return None
    hits = ends[-1].get("cache_hits", 0) - ends[0].get("cache_hits", 0)
    misses = ends[-1].get("cache_misses", 0) - ends[0].get("cache_misses", 0)
    return round(hits / (hits + misses), 4) if hits + misses > 0 else None


def find_knee(series: list[dict[str, Any]], scenario: dict[str, Any], t0: float) -> dict[str, Any]:
    """The first sustained second where p99 passes the target or errors appear."""
    target = scenario["p99_target_ms"]
    run = 0
    for point in series:
        bad = point["achieved_rps"] >= MIN_ANSWERS_FOR_KNEE and (
            point["p99_ms"] > target or point["errors"] > 0)  # fmt: skip
        run = run + 1 if bad else 0
        if run == SUSTAINED_SECONDS:
            at = point["t"] - SUSTAINED_SECONDS + 1
            before = [p["achieved_rps"] for p in series[:at]] or [0]
            return {"found": True, "at_s": at, "users": _users_at(scenario, at),
                    "best_achieved_rps_before": max(before),
                    "p99_ms": series[at]["p99_ms"], "p99_target_ms": target}  # fmt: skip
    return {"found": False, "p99_target_ms": target, "users": scenario["users"],
            "best_achieved_rps": max(p["achieved_rps"] for p in series)}  # fmt: skip


def _users_at(scenario: dict[str, Any], elapsed: float) -> int:
    return Scenario(**scenario).users_at(elapsed)


def find_recovery(series: list[dict[str, Any]], restart_at: float) -> dict[str, Any]:
    """Error window after the restart, and the time until p99 is back to its level before."""
    start = max(0, int(restart_at))
    before = sorted(p["p99_ms"] for p in series[:start] if p["achieved_rps"])
    baseline = before[len(before) // 2] if before else 0.0
    error_seconds = [p["t"] for p in series[start:] if p["errors"]]
    window_end = error_seconds[-1] if error_seconds else start
    back = None
    run = 0
    for point in series[window_end:]:
        normal = point["achieved_rps"] > 0 and point["p99_ms"] <= baseline * NORMAL_P99_FACTOR
        run = run + 1 if normal else 0
        if run == SUSTAINED_SECONDS + 1:
            back = point["t"] - SUSTAINED_SECONDS
            break
    return {
        "restart_at_s": round(restart_at, 2),
        "baseline_p99_ms": baseline,
        "errors_after_restart": sum(p["errors"] for p in series[start:]),
        "error_window_s": [error_seconds[0], error_seconds[-1] + 1] if error_seconds else None,
        "seconds_to_normal_p99": None if back is None else round(back - restart_at, 1),
    }


def plots(result: dict[str, Any]) -> dict[str, bytes]:
    """PNG plots of the run: rates, latency, errors, resources."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    t = [p["t"] for p in series]
    marks = []
    if result.get("knee", {}).get("found"):
        marks.append((result["knee"]["at_s"], "knee"))
    if "recovery" in result:
        marks.append((result["recovery"]["restart_at_s"], "restart"))
    out: dict[str, bytes] = {}

    def finish(name: str, fig: Any, ax: Any) -> None:
        for at, label in marks:
            ax.axvline(at, color="grey", linestyle="--", linewidth=1)
            ax.text(at, ax.get_ylim()[1], f" {label}", va="top", fontsize=8, color="grey")
        ax.set_xlabel("seconds")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        out[name] = buffer.getvalue()

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(t, [p["target_rps"] for p in series], label="target (the visitors' plan)",
            color="tab:grey", linestyle="--")  # fmt: skip
    ax.plot(t, [p["scheduled_rps"] for p in series], label="sent (by intended start)",
            color="tab:orange", alpha=0.6)  # fmt: skip
    ax.plot(t, [p["achieved_rps"] for p in series], label="achieved (answered)", color="tab:blue")
    ax.set_ylabel("requests / s")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Target vs achieved rate")
    finish("rate", fig, ax)

    fig, ax = plt.subplots(figsize=(8, 3))
    for key, color in (("p50_ms", "tab:green"), ("p95_ms", "tab:orange"), ("p99_ms", "tab:red")):
        ax.plot(t, [max(p[key], 0.1) for p in series], label=key[:3], color=color)
    ax.set_yscale("log")
    ax.set_ylabel("ms from intended start")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Latency percentiles per second")
    finish("latency", fig, ax)

    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.plot(t, [100 * p["error_rate"] for p in series], color="tab:red")
    ax.set_ylabel("errors %", color="tab:red")
    title = "Error rate (5xx, no answer, 4xx to a valid request)"
    if any("hit_rate" in p for p in series):  # the service's result cache, from /metrics
        twin = ax.twinx()
        twin.plot(t, [100 * p.get("hit_rate", math.nan) for p in series], color="tab:cyan")
        twin.set_ylabel("cache hits %", color="tab:cyan")
        twin.set_ylim(0, 105)
        title = "Error rate (red) and result-cache hit rate (cyan)"
    ax.set_title(title)
    finish("errors", fig, ax)

    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.plot(t, [p.get("cpu_cores", math.nan) for p in series], color="tab:purple")
    ax.set_ylabel("CPU cores", color="tab:purple")
    twin = ax.twinx()
    twin.plot(t, [p.get("rss_mb", math.nan) for p in series], color="tab:brown")
    twin.set_ylabel("RSS MiB", color="tab:brown")
    ax.set_title("Service CPU and memory (from /metrics)")
    finish("resources", fig, ax)
    return out


def write_report(run: Path, result: dict[str, Any], command: str) -> Path:
    """``report.json``, one PNG per plot, and ``report.html`` with the plots inlined."""
    result = {**result, "command": command}
    (run / "report.json").write_text(json.dumps(result, indent=1))
    images = plots(result)
    for name, png in images.items():
        (run / f"{name}.png").write_bytes(png)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in result["summary"].items())  # fmt: skip
    extra = ""
    for key in ("knee", "recovery"):
        if key in result:
            extra += f"<h2>{key}</h2><pre>{html.escape(json.dumps(result[key], indent=1))}</pre>"
    kinds = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v['requests']}</td><td>{v['p50_ms']}</td>"
        f"<td>{v['p99_ms']}</td><td>{html.escape(json.dumps(v['statuses']))}</td></tr>"
        for k, v in result["kinds"].items()
    )
    pictures = "".join(
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for name, png in images.items()
    )
    name = html.escape(result["scenario"]["name"])
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>reelsearch load test: {name}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
img{{display:block;max-width:100%;margin:1em 0}}</style></head><body>
<h1>Load test: {name}</h1>
<p><code>{html.escape(command)}</code></p>
<p>Latency counts from each request's intended start (open-loop schedule), so stalls are
charged to the requests they delayed; <em>service_p99_ms</em> counts from the actual send.</p>
<h2>Summary</h2><table>{rows}</table>{extra}
<h2>By kind</h2><table><tr><th>kind</th><th>requests</th><th>p50 ms</th><th>p99 ms</th>
<th>statuses</th></tr>{kinds}</table>
<h2>Plots</h2>{pictures}
<h2>Scenario</h2><pre>{html.escape(json.dumps(result["scenario"], indent=1))}</pre>
<h2>Events</h2><pre>{html.escape(json.dumps(result["events"], indent=1))}</pre>
</body></html>"""
    path = run / "report.html"
    path.write_text(page)
    return path
