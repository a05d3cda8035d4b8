"""Plans, matches and parsed queries kept by the engine's LRUs, out of the collector's view.

The engine keeps what it derives from a query for the next time the query comes
(``TieredSearch.plan``: 4,096 plans; ``TextPages.match``: as many compiled
matches; the route's parser: as many ``SearchQuery`` objects; on PostgreSQL,
``PreparedPages``: 2,048 prepared first round trips). Each is a graph
of small slotted objects and the tuples joining them, about 25 tracked objects a
plan with its match: ~100,000 once the LRUs are full, made after the start-up heap
was frozen (cache/heap.py), so every full (generation 2) collection walked them.
On the sample under a Zipf stream that was a full collection of 60-95 ms each
time a quarter as many objects as the old generation held had survived into it,
a pause of every request in flight on that worker (bench/RESULTS.md, "Tenth
session").

``PyObject_GC_UnTrack`` takes an object out of the collector's lists, as the
interpreter does itself for a tuple holding only atoms; it is still freed by
reference count when the LRU drops it. The collector is only needed for
reference cycles, and these graphs have none: every class here is immutable
once built (frozen dataclasses, ``SlotTest``; ``TextMatch`` sets one attribute
later, to a string or None), built bottom up from the query's words, and what
they reference outside themselves (the snapshot's vocabulary and typo index, the
dialect's syntax) references nothing of theirs. What is taken out is what the
query made (and ``NO_FILTERS``, a constant of atoms): the walks below name each
field, and stop at the snapshot's objects, which stay as they were. A field added
later and not walked here stays tracked: slower collections, never a leak
(tests/search/test_held.py checks that nothing reachable is left).

``PyObject_GC_UnTrack`` itself trusts its argument to be an object the collector
handles (it reads the collector's header in front of it), so each call here is
guarded by ``gc.is_tracked``, which checks that first: a field that some day holds
a string or None is skipped, not written over.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from reelsearch.search.matching import TextMatch
    from reelsearch.search.plan import QueryPlan
    from reelsearch.search.postgres_prepared import PreparedPage
    from reelsearch.search.query import SearchQuery

# CPython's own call (the one the interpreter uses for tuples and dicts of atoms): ~0.17
# µs with the check, ~25 per new plan and match (a miss), where a full collection
# walking them cost tens of µs per miss. cache/heap.py takes both names from here.
_GC_UNTRACK = ctypes.pythonapi.PyObject_GC_UnTrack
_GC_UNTRACK.argtypes = (ctypes.py_object,)
_GC_UNTRACK.restype = None
_Entry = TypeVar("_Entry", bound=tuple[Any, ...])

# ``untrack`` of one object just made (so surely a tracked collector object), on a miss
# path: the C call alone, no Python frame, no check.
untrack_new: Callable[[object], None] = _GC_UNTRACK


def untrack(*objects: object) -> None:
    """Take ``objects`` out of the collector's view; each must be part of no reference
    cycle (it is then freed by reference count alone, as an untracked tuple is). One that
    is not a tracked collector object (a string, None, one untracked already) is skipped."""
    for obj in objects:
        if gc.is_tracked(obj):
            _GC_UNTRACK(obj)


def hold_query(query: SearchQuery) -> SearchQuery:
    """``query`` out of the collector's view (its tuples hold only atoms: the
    interpreter untracks those itself); returned for use in an expression."""
    untrack(query)
    return query


def hold_plan(plan: QueryPlan) -> QueryPlan:
    """``plan``, its slots and their alternatives out of the collector's view (its
    excluded phrases are tuples of words: the interpreter untracks those inside)."""
    for slot in plan.slots:
        untrack(*slot.alternatives, slot.alternatives, slot)
    untrack(plan.slots, plan.required, plan.excluded, plan)
    return plan


def hold_match(match: TextMatch) -> TextMatch:
    """``match``, its slot tests, phrase and plan out of the collector's view (the plan is
    mostly the planner's, held already; a plan less its year, ``without_year``, is made
    for the match), not the vocabulary and typo index (the snapshot's)."""
    for test in match._ranking:
        untrack(*test.tests, test.tests, test)
    untrack(match._ranking, match.phrase)
    hold_plan(match.plan)
    untrack(match)
    return match


def hold_entry(entry: _Entry) -> _Entry:
    """An LRU's own tuple of held objects (a key or a value): tuples holding instances
    stay tracked otherwise, whatever those hold. Not in a mypyc-compiled module: it
    keeps a fixed-length tuple as a C struct and boxes a new, tracked one where the
    tuple is stored (``TextPages.match`` keeps the match alone for that reason)."""
    untrack(entry)
    return entry


def hold_prepared_page(page: PreparedPage | None) -> PreparedPage | None:
    """A PostgreSQL page's first round trip out of the collector's view: the page, its
    filters, its statement and its cuts (the matches they tried come from
    ``TextPages.match``, which held them with their plans)."""
    if page is None:
        return None
    filters = page.filters
    untrack(*page.cuts, page.cuts, page.tried, filters.params, filters, page)
    if filters.columns is not None:  # values only: strings, numbers and None
        untrack(filters.columns)
    if page.statement is not None:
        untrack(page.statement.params, page.statement)
    return page
