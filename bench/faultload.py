"""A bounded HTTP load with every request recorded, and what a fault did to it.

Why: a fault's cost is a time series (when did errors start and stop, when was
p99 normal again), so the load generator keeps each request's send time,
latency and outcome instead of a summary. Every 200 is also checked against a
reference answer taken before the load (the hit ids and total of that path):
an answer that is fast but wrong counts as wrong, not as served.

Used by bench/faults.py; loopback only, bounded in time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import orjson

# Real searches on the sample catalog: exact titles, prefixes, typos, filters, facets.
SEARCH_TEXTS = (
    "star wars", "the godfather", "godfater", "casablanca", "alien", "matrix", "the mat",
    "psycho", "vertigo", "citizen kane", "king kong 1933", "rocky 2", "toy story",
    "jurassic park", "titanic", "batman", "spiderman", "lord of the rings", "star trek",
    "back to the future", "terminator", "jaws", "amelie", "seven samurai", "metropolis",
    "love", "the", "night", "dracula", "frankenstein", "wizard of oz", "pulp fiction",
    "fargo", "heat", "gladiator", "braveheart", "forrest gump", "goodfellas", "sunset",
    "ghost",
)  # fmt: skip
FILTERED = (
    "q=love&year_from=1990&year_to=1999",
    "q=war&genres=Drama&facets=genres,decade",
    "q=night&sort=-rating&min_votes=1000",
    "q=star&limit=50&offset=100",
)
LOAD_PATHS = tuple(f"/v1/search?q={quote(t)}" for t in SEARCH_TEXTS) + tuple(
    f"/v1/search?{qs}" for qs in FILTERED
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request: when it was sent (monotonic), its latency, its status (0: no answer)."""

    sent: float
    seconds: float
    status: int
    is_wrong: bool = False  # a 200 whose hits differ from the reference answer


def answer_key(body: bytes) -> tuple[object, ...]:
    """What must not change while nothing is written: the hit ids, in order, and the total."""
    data = orjson.loads(body)
    return (tuple(hit["id"] for hit in data["hits"]), data["total"], data["total_is_exact"])


async def reference_answers(base_url: str, paths: Sequence[str]) -> dict[str, tuple[object, ...]]:
    """Each path's answer key, from a fresh request with nothing else running."""
    answers: dict[str, tuple[object, ...]] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        for path in paths:
            response = await client.get(path)
            response.raise_for_status()
            answers[path] = answer_key(response.content)
    return answers


@dataclass
class Load:
    """``clients`` closed-loop clients cycling through ``paths`` until ``stop()``."""

    base_url: str
    paths: Sequence[str]
    reference: dict[str, tuple[object, ...]]
    clients: int = 8
    timeout: float = 10.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, max_seconds: float) -> None:
        """Send until stopped or ``max_seconds`` pass (the bound on every run)."""
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits
        ) as client:
            ends = time.monotonic() + max_seconds
            await asyncio.gather(*(self._client(client, n, ends) for n in range(self.clients)))

    def stop(self) -> None:
        self._stopping.set()

    async def _client(self, client: httpx.AsyncClient, n: int, ends: float) -> None:
        i = n * 7
        while not self._stopping.is_set() and time.monotonic() < ends:
            path = self.paths[i % len(self.paths)]
            i += 1
            sent = time.monotonic()
            try:
                response = await client.get(path)
                status, body = response.status_code, response.content
            except httpx.HTTPError:
                status, body = 0, b""
            seconds = time.monotonic() - sent
            is_wrong = status == 200 and answer_key(body) != self.reference[path]
            self.outcomes.append(Outcome(sent, seconds, status, is_wrong))
            if status != 200:
                await asyncio.sleep(0.01)  # a client backs off a little after an error


@dataclass(frozen=True, slots=True)
class FaultReport:
    """What one fault did to the load, times relative to the fault's start."""

    name: str
    requests: int
    failed: int
    wrong: int
    statuses: dict[int, int]
    error_window: tuple[float, float] | None  # first and last failed request's send time
    baseline_p99_ms: float
    fault_p99_ms: float  # p99 from the fault's start until it was undone
    back_to_normal_s: float | None  # from the fault's start; None: never within the run
    after_ok: bool  # a fresh request on every path, after recovery, gave the reference answer
    note: str = ""
    # Per ``window_s`` from the fault's start: (offset s, requests, failed, p99 ms).
    timeline: tuple[tuple[float, int, int, float], ...] = ()

    def timeline_text(self) -> str:
        return "  ".join(f"{t:+.0f}s:{n}/{bad}/{ms:.0f}" for t, n, bad, ms in self.timeline)

    def row(self) -> list[object]:
        window = (
            "-"
            if self.error_window is None
            else f"{self.error_window[0] * 1000:+.0f} to {self.error_window[1] * 1000:+.0f} ms"
        )
        back = "never" if self.back_to_normal_s is None else f"{self.back_to_normal_s:.1f} s"
        codes = ", ".join(f"{code or 'none'}: {n}" for code, n in sorted(self.statuses.items()))
        return [
            self.name,
            f"{self.failed}/{self.requests:,}",
            window,
            f"{self.baseline_p99_ms:.1f} / {self.fault_p99_ms:.1f}",
            back,
            f"{self.wrong} wrong; after: {'same' if self.after_ok else 'DIFFERENT'}",
            codes,
        ]


HEADERS = [
    "fault",
    "failed/requests",
    "error window (send time - fault)",
    "p99 ms before / during",
    "p99 normal again after",
    "answers",
    "statuses",
]


def p99(seconds: Sequence[float]) -> float:
    if len(seconds) < 2:
        return seconds[0] if seconds else 0.0
    return statistics.quantiles(seconds, n=100, method="inclusive")[98]


def analyse(
    name: str,
    outcomes: Sequence[Outcome],
    fault_at: float,
    undone_at: float,
    *,
    after_ok: bool,
    window_s: float = 1.0,
    tolerance: float = 2.0,
    note: str = "",
) -> FaultReport:
    """Error window, p99 before and during, and when p99 was normal again.

    Normal again: the start of the first ``window_s`` window after the fault
    began from which on every window has no failure and a p99 within
    ``tolerance`` x the p99 before the fault (2x: the machine is shared).
    """
    failed = [o for o in outcomes if o.status != 200]
    statuses: dict[int, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    before = [o.seconds for o in outcomes if o.sent < fault_at]
    during = [o.seconds for o in outcomes if fault_at <= o.sent < undone_at]
    baseline = p99(before)
    window = None
    if failed:
        window = (min(o.sent for o in failed) - fault_at, max(o.sent for o in failed) - fault_at)
    last = max((o.sent for o in outcomes), default=fault_at)
    starts = [fault_at + k * window_s for k in range(int((last - fault_at) / window_s))]
    is_normal = []
    timeline = []
    first = min((o.sent for o in outcomes), default=fault_at)
    for k in range(int((fault_at - first) / window_s), 0, -1):
        inside = [o for o in outcomes if 0 <= fault_at - k * window_s - o.sent < window_s]
        bad = sum(1 for o in inside if o.status != 200)
        timeline.append((-k * window_s, len(inside), bad, p99([o.seconds for o in inside]) * 1000))
    for start in starts:
        inside = [o for o in outcomes if start <= o.sent < start + window_s]
        bad = sum(1 for o in inside if o.status != 200)
        timeline.append(
            (start - fault_at, len(inside), bad, p99([o.seconds for o in inside]) * 1000)
        )
        is_normal.append(
            bool(inside)
            and all(o.status == 200 for o in inside)
            and p99([o.seconds for o in inside]) <= tolerance * baseline
        )
    back: float | None = None
    for k in range(len(starts)):
        if all(is_normal[k:]):
            back = starts[k] - fault_at
            break
    return FaultReport(
        name=name,
        requests=len(outcomes),
        failed=len(failed),
        wrong=sum(1 for o in outcomes if o.is_wrong),
        statuses=statuses,
        error_window=window,
        baseline_p99_ms=baseline * 1000,
        fault_p99_ms=p99(during) * 1000 if during else 0.0,
        back_to_normal_s=back,
        after_ok=after_ok,
        note=note,
        timeline=tuple(timeline),
    )
