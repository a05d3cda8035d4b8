"""The visitors Locust simulates (``python -m locust -f THIS --reelsearch-run DIR``).

Loaded by Locust in its own process (it patches the standard library for
gevent); ``runner.py`` starts that process and reads what this file writes
into the run directory:

- ``requests.jsonl``: one line per request: intended start, actual start,
  end (Unix seconds), status, kind, whether it counts as an error, whether
  it began an action (a keystroke burst is one action of many requests);
- ``metrics.jsonl``: the service's ``/metrics`` scraped every second (CPU
  seconds, resident memory, requests in flight, workers).
"""

from __future__ import annotations

import bisect
import json
import random
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

import gevent
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from prometheus_client.parser import text_string_to_metric_families

from reelsearch.loadtest.scenarios import (
    HOSTILE_PATHS,
    KEYSTROKE_SECONDS,
    MIX,
    ZIPF_S,
    Scenario,
)

# Used when the catalog can't be listed (an empty catalog): searches still run.
_FALLBACK_TITLES = [(1, "star wars"), (2, "the matrix"), (3, "alien"), (4, "casablanca")]
_CACHE_EVENTS = "reelsearch_cache_events_total"
# The reading after the run: asked this many times, each waiting this long at most.
FINAL_SCRAPE_TRIES = 3
FINAL_SCRAPE_TIMEOUT = 5.0
_SCRAPED = {
    "reelsearch_process_cpu_seconds_total": "cpu_seconds",
    "reelsearch_process_resident_memory_bytes": "rss_bytes",
    "reelsearch_http_requests_in_flight": "in_flight",
    "reelsearch_process_workers": "workers",
}


class Run:
    """What every visitor of this process shares: the plan, the titles, the output files."""

    scenario: Scenario
    directory: Path
    titles: list[tuple[int, str]]
    zipf_cumulative: list[float]
    requests: TextIO
    metrics: TextIO
    scraper: gevent.Greenlet

    @classmethod
    def load(cls, environment: Environment) -> None:
        assert environment.parsed_options is not None, "run by locust's command line"
        cls.directory = Path(environment.parsed_options.reelsearch_run)
        cls.scenario = Scenario(**json.loads((cls.directory / "scenario.json").read_text()))

    @classmethod
    def pick_title(cls) -> tuple[int, str]:
        """A title by popularity rank, drawn from a Zipf law."""
        at = bisect.bisect_left(cls.zipf_cumulative, random.random() * cls.zipf_cumulative[-1])
        return cls.titles[min(at, len(cls.titles) - 1)]


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--reelsearch-run", default="", help="the run directory (runner.py)")


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    Run.load(environment)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    host = str(environment.host).rstrip("/")
    Run.titles = _popular_titles(host) or _FALLBACK_TITLES
    weights = [1 / (rank**ZIPF_S) for rank in range(1, len(Run.titles) + 1)]
    Run.zipf_cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
    Run.requests = (Run.directory / "requests.jsonl").open("w")
    Run.metrics = (Run.directory / "metrics.jsonl").open("w")
    Run.scraper = gevent.spawn(_scrape_metrics, host, Run.metrics)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    Run.requests.close()
    # One last reading once the workers have flushed what the run's last requests counted
    # (they do every sampler tick, 1 s by default): a short run may otherwise end between
    # two scrapes that saw the same totals, and the run would report no hit rate.
    # On a loaded machine that reading may time out: asked again (a few seconds at most),
    # since without it a short run has no hit rate to report.
    Run.scraper.kill()
    gevent.sleep(1.1)
    host = str(environment.host).rstrip("/")
    for _attempt in range(FINAL_SCRAPE_TRIES):
        if _scrape_once(host, Run.metrics, timeout=FINAL_SCRAPE_TIMEOUT):
            break
    Run.metrics.close()


@events.request.add_listener
def _on_request(
    name: str,
    response_time: float,
    response: Any,
    context: dict[str, Any],
    exception: BaseException | None,
    start_time: float,
    **_: Any,
) -> None:
    status = getattr(response, "status_code", 0) or 0
    line = [round(context.get("intended", start_time), 4), round(start_time, 4),
            round(start_time + response_time / 1000, 4), status, name,
            exception is not None, context.get("first", True)]  # fmt: skip
    Run.requests.write(json.dumps(line) + "\n")


def _popular_titles(host: str) -> list[tuple[int, str]]:
    """The catalog's most voted titles, listed through the public API."""
    found: list[tuple[int, str]] = []
    for offset in (0, 100, 200):
        query = urllib.parse.urlencode({"min_votes": 1, "sort": "-votes", "limit": 100,
                                        "offset": offset, "fields": "id,title"})  # fmt: skip
        try:
            with urllib.request.urlopen(f"{host}/v1/search?{query}", timeout=10) as answer:
                hits = json.loads(answer.read())["hits"]
        except (OSError, ValueError, KeyError):
            break
        found += [(int(hit["id"]), str(hit["title"])) for hit in hits]
    return found


def _scrape_metrics(host: str, out: TextIO) -> None:
    """Every second until stopped: the service's CPU, memory and load."""
    while True:
        started = time.time()
        _scrape_once(host, out)
        gevent.sleep(max(0.0, 1.0 - (time.time() - started)))


def _scrape_once(host: str, out: TextIO, timeout: float = 2.0) -> bool:
    """One line of ``metrics.jsonl``: what the service's /metrics says now; False if it
    did not answer (the line says so)."""
    started = time.time()
    try:
        with urllib.request.urlopen(f"{host}/metrics", timeout=timeout) as answer:
            text = answer.read().decode()
        line: dict[str, float] = {"t": round(started, 3)}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in _SCRAPED:
                    line[_SCRAPED[sample.name]] = sample.value
                elif sample.name == _CACHE_EVENTS:  # hits in any level, and misses
                    event = sample.labels.get("event", "")
                    if event.startswith("hit_") or event == "miss":
                        name = "cache_misses" if event == "miss" else "cache_hits"
                        line[name] = line.get(name, 0.0) + sample.value
        out.write(json.dumps(line) + "\n")
        out.flush()
        return True
    except (OSError, ValueError):
        out.write(json.dumps({"t": round(started, 3), "unreachable": True}) + "\n")
        return False


class Visitor(FastHttpUser):
    """A person using the search page: searches, types, opens details, filters."""

    # Fail fast rather than hang: a stalled server shows as errors and late answers.
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.next_at = time.time() + random.uniform(0, Run.scenario.think_seconds)

    def wait_time(self) -> float:
        """Until this visitor's next intended action; 0 if the schedule has fallen behind."""
        return max(0.0, self.next_at - time.time())

    @task
    def act(self) -> None:
        # Locust runs a visitor's first task at once, without wait_time: without this
        # the first action went out before its intended start (negative latencies).
        gevent.sleep(max(0.0, self.next_at - time.time()))
        scenario = Run.scenario
        if scenario.error_share and random.random() < scenario.error_share:
            self._get(random.choice(HOSTILE_PATHS), "hostile")
        else:
            kind = random.choices(list(MIX), weights=list(MIX.values()))[0]
            getattr(self, "_" + kind)()
        self.next_at += random.expovariate(1 / scenario.think_seconds)

    def _search(self) -> None:
        _, title = Run.pick_title()
        if random.random() < 0.2 and len(title) > 5:  # a typo: two letters swapped
            at = random.randrange(1, len(title) - 2)
            title = title[:at] + title[at + 1] + title[at] + title[at + 2 :]
        self._get("/v1/search?" + urllib.parse.urlencode({"q": title}), "search")

    def _autocomplete(self) -> None:
        """A title typed letter by letter: one request per keystroke, on the typing schedule."""
        _, title = Run.pick_title()
        for end in range(1, min(len(title), 12) + 1):
            self._get("/v1/autocomplete?" + urllib.parse.urlencode({"q": title[:end]}),
                      "autocomplete", first=end == 1)  # fmt: skip
            self.next_at += KEYSTROKE_SECONDS
            gevent.sleep(max(0.0, self.next_at - time.time()))

    def _detail(self) -> None:
        movie_id, _ = Run.pick_title()
        self._get(f"/v1/movies/{movie_id}", "detail")

    def _filtered(self) -> None:
        _, title = Run.pick_title()
        params = {"q": title.split()[0], "year_from": random.choice(["1950", "1980", "2000"]),
                  "genres": random.choice(["Drama", "Comedy", "Action,Romance"]),
                  "facets": "genres,decade"}  # fmt: skip
        self._get("/v1/search?" + urllib.parse.urlencode(params), "filtered")

    def _get(self, path: str, kind: str, first: bool = True) -> None:
        """One request; ``first`` is False for a keystroke after an action's first."""
        context = {"intended": self.next_at, "first": first}
        with self.client.get(path, name=kind, context=context,
                             catch_response=True) as answer:  # fmt: skip
            status = answer.status_code or 0
            # Errors are what the service must not answer: 5xx and no answer at all;
            # and a 4xx to a well-formed request. Hostile requests must get 4xx.
            expected_4xx = kind == "hostile" or (kind == "detail" and status == 404)
            if status == 0 or status >= 500 or (status >= 400 and not expected_4xx):
                answer.failure(f"status {status}")
            else:
                answer.success()


class Schedule(LoadTestShape):
    """Visitors over time: the scenario's plateau or stress ramp; stops at its duration."""

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if elapsed >= Run.scenario.duration:
            return None
        return Run.scenario.users_at(elapsed), Run.scenario.spawn_rate
