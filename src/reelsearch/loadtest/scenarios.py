"""The load-test scenarios: who the simulated visitors are and how many, over time.

Every visitor follows a schedule (open loop): each request has an intended
start time, set by think time or the pace of typing, whether or not the
previous answer was late. A stalled server therefore shows up twice: the
achieved rate falls below the target rate, and latency counted from the
intended start (``latency_ms``) includes the time the request waited to be
sent, which a closed-loop tool would hide (coordinated omission).

What a visitor does, in proportion (``MIX``):

- searches a title drawn by popularity rank from a Zipf law (a few titles
  asked very often, a long tail), sometimes with a typo;
- types a title letter by letter into autocomplete (a keystroke burst,
  ``KEYSTROKE_SECONDS`` apart);
- opens a movie's details;
- searches with filters and facets (years, genres, facets=genres,decade).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Weights of what a visitor does next.
MIX = {"search": 50, "autocomplete": 20, "detail": 15, "filtered": 15}
# Zipf exponent of title popularity: about what search logs show (s close to 1).
ZIPF_S = 1.0
# A person types about 5-8 characters a second.
KEYSTROKE_SECONDS = 0.15
# Malformed and hostile requests of the error scenario: none may get a 5xx. Most are
# refused (4xx); a few are answered as harmless searches (an inverted year range is an
# empty result, a run of quotes an empty phrase).
HOSTILE_PATHS = (
    "/v1/search?q=matrix&limit=0",
    "/v1/search?q=matrix&limit=abc",
    "/v1/search?q=" + "x" * 300,
    "/v1/search?q=%ff%fe",
    "/v1/search?year_from=2020&year_to=1990&q=a",
    "/v1/search?q=star&sort=drop+table",
    "/v1/search?q=star&unknown=1",
    "/v1/movies/-1",
    "/v1/movies/99999999999",
    "/v1/movies/1%27%20OR%201=1",
    "/v1/autocomplete",
    "/../../etc/passwd",
    "/v1/search?q=" + "%22" * 20,
)
SCENARIOS = ("normal", "peak", "stress", "error", "recovery")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One run's plan; written to the run's directory and read by the locustfile."""

    name: str
    duration: float  # seconds of load
    users: int  # visitors at the plateau (the stress ramp's end)
    think_seconds: float  # mean pause between a visitor's actions (exponential)
    spawn_rate: float  # visitors started per second
    error_share: float = 0.0  # share of actions that send a hostile request
    # stress: the ramp goes from ``start_users`` to ``users`` in ``steps`` equal steps
    start_users: int = 0
    steps: int = 1
    p99_target_ms: float = 250.0  # stress: the knee is where p99 passes this (or errors start)
    # recovery: ``restart_command`` is run ``restart_at`` seconds into the load
    restart_command: str = ""
    restart_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def users_at(self, elapsed: float) -> int:
        """Visitors wanted ``elapsed`` seconds into the run (the stress ramp, else flat)."""
        if self.steps <= 1:
            return self.users
        step = min(self.steps - 1, int(elapsed / (self.duration / self.steps)))
        return round(self.start_users + (self.users - self.start_users) * step / (self.steps - 1))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def scenario(
    name: str,
    duration: float,
    *,
    users: int | None = None,
    restart_command: str = "",
    restart_at: float | None = None,
    error_share: float = 0.2,
    p99_target_ms: float = 250.0,
) -> Scenario:
    """The named scenario for ``duration`` seconds (``users`` overrides its plateau)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    if duration <= 0:
        raise ValueError("the duration must be positive")
    normal = users or 10
    if name == "normal":
        return Scenario(name, duration, normal, think_seconds=1.0, spawn_rate=normal)
    if name == "peak":  # several times the normal rate, reached quickly
        return Scenario(name, duration, (users or normal) * 4 if users is None else users,
                        think_seconds=1.0, spawn_rate=normal * 4)  # fmt: skip
    if name == "stress":  # steps up until the knee; think time short so each step hurts
        top = users or 200
        return Scenario(name, duration, top, think_seconds=0.5, spawn_rate=top,
                        start_users=max(1, top // 10), steps=10,
                        p99_target_ms=p99_target_ms)  # fmt: skip
    if name == "error":
        if not 0 < error_share < 1:
            raise ValueError("the error share must be between 0 and 1")
        return Scenario(name, duration, normal, think_seconds=1.0, spawn_rate=normal,
                        error_share=error_share)  # fmt: skip
    if not restart_command:
        raise ValueError("the recovery scenario needs --restart-command")
    return Scenario(name, duration, normal, think_seconds=1.0, spawn_rate=normal,
                    restart_command=restart_command,
                    restart_at=duration / 3 if restart_at is None else restart_at)  # fmt: skip
