"""What requests count between two flushes, in plain Python, and totals turned into increments.

``Tally`` holds the counts and histogram buckets a worker's requests add up
(``Metrics.observe_request`` and friends) until ``Metrics.flush`` moves them
into the shared instruments; ``Deltas`` turns cumulative totals read from
elsewhere (CPU seconds, pool waits, cache events) into counter increments.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Any


class Buckets:
    """One histogram's observations since the last flush: counts per bucket and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # The first bucket whose upper bound is >= value, as prometheus-client counts.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def add_to(self, child: Any) -> None:
        """Add to a histogram child what ``observe`` would have, one call per bucket.

        prometheus-client has no public call to add n observations at once; its
        children keep per-bucket (non-cumulative) values in ``_buckets`` and the
        sum in ``_sum``, as ``Histogram.observe`` updates them. The worker test
        checks the exposition against requests made, so a change here shows.
        """
        child._sum.inc(self.total)
        for index, count in enumerate(self.counts):
            if count:
                child._buckets[index].inc(count)


class Tally:
    """What requests counted since the last flush, in plain dicts."""

    __slots__ = ("errors", "latency", "requests", "stages")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.errors: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, Buckets] = {}
        self.stages: dict[tuple[str, str], Buckets] = {}


class Deltas:
    """Turns cumulative totals read from elsewhere into increments since the last read."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def growth(self, totals: Iterable[tuple[str, float]]) -> Iterator[tuple[str, float]]:
        for name, total in totals:
            grown = total - self._last.get(name, 0)
            self._last[name] = total
            if grown > 0:  # a total that went down was reset: count from there
                yield name, grown
