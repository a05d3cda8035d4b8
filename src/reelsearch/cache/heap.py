"""Keeping the garbage collector off the catalog and the held answers.

Two means: freezing what is loaded at start-up (re-frozen on reload), and taking
each held answer out of the collector's view when L1 stores it (``untrack``).

CPython's full (generation 2) collection walks every tracked object, and one
runs each time the objects that survived into the old generation since the
last grew by a quarter of it. A worker's heap after start-up is mostly the
engine's snapshot of the catalog, walked at ~85 ms per full collection on the
sample. Every result-cache entry is a survivor (the engine's plan caches are
too), so a stream of misses ran one full collection every ~1,500 misses:
~57 µs of CPU per miss with the cache on, ~25 µs with it off
(bench/RESULTS.md, decision 0019).

``gc.freeze()`` moves every object alive now to a permanent generation that
collections skip; they still die by reference counting. What a reload
replaces (an import, a write's new snapshot) may hold reference cycles that
only a collection frees, so after the engine's catalog version changes the
heap is unfrozen, collected once and frozen again: at most once per
``REFREEZE_EVERY`` seconds, a pause of one full collection.

A held answer (an L1 entry and what it keeps: its tag source, its header
blocks) is a survivor too, made after the freeze: each full collection walked
the whole L1, ~0.1 s a collection on a filled worker (decision 0029). ``untrack``
(search/held.py's, which also holds the engine's plans and matches: decision 0041)
takes such objects out of the collector's lists with CPython's
``PyObject_GC_UnTrack``, as the interpreter itself does for a tuple or a dict
holding only atomic values. They still die by reference count the moment the
last reference goes; the collector is only needed to free reference cycles, so
an untracked object must never be part of one: an entry, the values in its
slots and its tag source's arguments reference nothing that leads back to them.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Protocol

# The one untracking primitive, shared with the engine's caches (search/held.py);
# re-exported here for L1 and the HTTP layer.
from reelsearch.search.held import untrack as untrack
from reelsearch.search.held import untrack_new as untrack_new

log = logging.getLogger("reelsearch.cache")
# At most one re-freeze (a full collection, ~0.1 s on the sample) per this many seconds.
REFREEZE_EVERY = 30.0


class _Snapshot(Protocol):
    @property
    def version(self) -> int: ...


class _Engine(Protocol):
    @property
    def snapshot(self) -> _Snapshot: ...


def freeze_heap() -> int:
    """Move every object alive now out of the collector's view; how many are frozen."""
    gc.freeze()
    return gc.get_freeze_count()


def refreeze_heap() -> int:
    """Unfreeze, collect what a reload left behind, freeze again; how many are frozen."""
    gc.unfreeze()
    gc.collect()
    return freeze_heap()


def thaw_heap() -> None:
    """Give every frozen object back to the collector (at shutdown)."""
    gc.unfreeze()


class HeapFreezer:
    """Re-freezes the heap after the engine serves a new catalog version; ``check`` runs
    after each of the app's catalog polls (http/app.py), not on a poll of its own."""

    def __init__(self, engine: _Engine, every: float = REFREEZE_EVERY) -> None:
        self.engine = engine
        self.every = every
        self.frozen_version = engine.snapshot.version
        self.refreezes = 0
        self._last = time.monotonic()

    def check(self) -> bool:
        """Re-freeze now if the version changed and the last re-freeze is old enough."""
        version = self.engine.snapshot.version
        if version == self.frozen_version or time.monotonic() - self._last < self.every:
            return False
        started = time.perf_counter()
        frozen = refreeze_heap()
        self.frozen_version, self._last = version, time.monotonic()
        self.refreezes += 1
        log.info("heap re-frozen after catalog %d: %d objects, %.0f ms", version, frozen,
                 (time.perf_counter() - started) * 1000)  # fmt: skip
        return True
