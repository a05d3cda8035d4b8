"""Plain counters of the result cache and HTTP caching, for the metrics issue to export.

Only ``+= 1`` on the hot path: no locks (one event loop per process), no labels
to look up. Per-level byte and entry gauges come from ``CacheLevel.stats``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class CacheCounters:
    """Counts since the process started."""

    hits: Counter[str] = field(default_factory=Counter)  # by level name
    misses: int = 0  # no level had a usable entry: computed (or waited for)
    first_sightings: int = 0  # of the misses: computed once, not stored (the doorkeeper)
    stale_served: int = 0  # an entry past its freshness answered while it is refreshed
    refreshes: int = 0  # background recomputations of stale entries
    computed: int = 0  # searches this process ran for the cache (database reads)
    singleflight_waits: int = 0  # requests that waited on another's computation here
    singleflight_remote_waits: int = 0  # waited on another process (Redis lock)
    evictions: Counter[str] = field(default_factory=Counter)  # by level name
    rejected: int = 0  # L1 admission said no
    invalidations: Counter[str] = field(default_factory=Counter)  # by cause
    # Entries dropped, by cause: "write" (a write's matcher, at once), "write_on_store"
    # and "write_on_read" (caught by the version check: decision 0015).
    invalidated_entries: Counter[str] = field(default_factory=Counter)
    not_modified: int = 0  # 304s sent
    fast_path: int = 0  # answered before routing
    bytes_sent: int = 0  # response bytes of cached answers, as sent
    bytes_saved: int = 0  # identity bytes minus bytes sent, by compression
    warmed: int = 0  # entries computed by warming
    level_errors: Counter[str] = field(default_factory=Counter)  # by level name

    def event_totals(self) -> dict[str, int]:
        """Every count as one flat name -> total, for the metrics sampler: hits per level
        (``hit_memory``), invalidations per cause, level errors per level, the rest by name."""
        totals = {f"hit_{level}": n for level, n in self.hits.items()}
        totals.update((f"invalidation_{cause}", n) for cause, n in self.invalidations.items())
        totals.update((f"level_error_{level}", n) for level, n in self.level_errors.items())
        totals.update((f"invalidated_{cause}", n) for cause, n in self.invalidated_entries.items())
        totals.update(
            miss=self.misses, first_sighting=self.first_sightings, stale_served=self.stale_served,
            refresh=self.refreshes,
            computed=self.computed, singleflight_wait=self.singleflight_waits,
            singleflight_remote_wait=self.singleflight_remote_waits,
            rejected=self.rejected, not_modified=self.not_modified, fast_path=self.fast_path,
            warmed=self.warmed, bytes_sent=self.bytes_sent, bytes_saved=self.bytes_saved,
        )  # fmt: skip
        return totals

    def as_dict(self) -> dict[str, object]:
        return {
            "hits": dict(self.hits),
            "misses": self.misses,
            "first_sightings": self.first_sightings,
            "stale_served": self.stale_served,
            "refreshes": self.refreshes,
            "computed": self.computed,
            "singleflight_waits": self.singleflight_waits,
            "singleflight_remote_waits": self.singleflight_remote_waits,
            "evictions": dict(self.evictions),
            "rejected": self.rejected,
            "invalidations": dict(self.invalidations),
            "invalidated_entries": dict(self.invalidated_entries),
            "not_modified": self.not_modified,
            "fast_path": self.fast_path,
            "bytes_sent": self.bytes_sent,
            "bytes_saved": self.bytes_saved,
            "warmed": self.warmed,
            "level_errors": dict(self.level_errors),
        }
