"""Search answers through the result cache: compute once, store finished, send from storage.

``SearchResponder.answer`` is what the ``/v1/search`` route calls once the
query is parsed. The body is the canonical query's answer (cache.keys), so
every spelling of a search gets the same bytes; the server time goes to a
``Server-Timing`` header, never into the stored body. With the cache off
(``REELSEARCH_CACHE=off``) the same path runs without storing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
import orjson
from starlette.types import Receive, Scope

from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse, new_entry
from reelsearch.cache.heap import untrack_new
from reelsearch.cache.keys import canonical_key, canonical_query
from reelsearch.cache.service import ResultCache
from reelsearch.cache.tags import PageTags
from reelsearch.cache.tags import search_tags as tags_for
from reelsearch.cache.writes import ChangeSource
from reelsearch.catalog.changes import MovieChange
from reelsearch.config import Settings
from reelsearch.errors import SearchCancelled
from reelsearch.http.caching import EntrySender
from reelsearch.http.disconnect import unless_disconnected
from reelsearch.http.params import query_pairs
from reelsearch.search.deadline import Deadline
from reelsearch.search.engine import SearchEngine, SearchResult
from reelsearch.search.filters import check_filter_names
from reelsearch.search.query import HIT_FIELDS, SearchQuery, parse_search
from reelsearch.search.rulebook import Rules

if TYPE_CHECKING:
    from starlette.applications import Starlette

# How often the in-memory search log is added to the shared one (seconds).
SEARCH_LOG_FLUSH_SECONDS = 10.0


def render_search(result: SearchResult) -> bytes:
    """The response body: the same bytes for the same result, whoever computes it."""
    body: dict[str, object] = {
        "hits": result.hits,
        "total": result.total,
        "total_is_exact": result.total_is_exact,
    }
    if result.facets is not None:
        body["facets"] = result.facets
    body["next_cursor"] = result.next_cursor
    return orjson.dumps(body)


def search_tags(
    query: SearchQuery, result: SearchResult, catalog_version: int, engine: SearchEngine | None
) -> tuple[str, ...]:
    """What a write must look at to know whether this answer changed (decision 0015):
    the words searched, as the engine may match them, and the movies shown."""
    return tags_for(query, result.hits, catalog_version, _rules_of(engine),
                    all_words=result.all_words)  # fmt: skip


def tag_source(
    query: SearchQuery, result: SearchResult, catalog_version: int, engine: SearchEngine | None
) -> Callable[[], tuple[str, ...]]:
    """``search_tags`` made later, when first needed (decision 0019): most answers are
    never looked at by a write. Keeps what the tags are made of: the words searched (not
    the ``SearchQuery``), the movie ids (not the page) and the rules the answer was
    computed with, in one object (``PageTags``, a tuple built in C) out of the garbage
    collector's view, so a held answer's source costs no full collection anything
    (decision 0029) and one untrack per miss (decision 0034)."""
    return page_tags(query, result, catalog_version, _rules_of(engine))


def page_tags(
    query: SearchQuery, result: SearchResult, catalog_version: int, rules: Rules | None
) -> PageTags:
    """``tag_source`` given the rules the answer was computed with."""
    hits = result.hits
    head = (query.words, query.last_is_prefix, query.quoted, catalog_version, rules,
            result.all_words)  # fmt: skip
    try:  # every hit has an id unless the page was asked without (``fields``)
        ids = tuple(map(_MOVIE_ID, hits))
    except KeyError:
        ids = tuple(hit["id"] for hit in hits if "id" in hit)
    source = PageTags(head + ids)
    # Tuples of strings and ints, numbers and the rules, which reference nothing back:
    # the source is freed by reference count with its entry.
    untrack_new(source)
    return source


def _rules_of(engine: SearchEngine | None) -> Rules | None:
    """The relevance rules the engine searches with now (None if it does not say)."""
    files = _rule_files(engine)
    return files.current() if files is not None else None


def _rule_files(engine: SearchEngine | None) -> Any:
    """The engine's rule files (``RuleFiles``), or None if it has none."""
    return getattr(getattr(engine, "tiered", None), "rules", None)


_MOVIE_ID = itemgetter("id")


def _canonical(query: SearchQuery, engine: SearchEngine) -> SearchQuery:
    """``canonical_query(query)``, skipped when it would change nothing the search reads.

    The common search names no genres, asks for every field and no facets;
    copying its query (a dataclass ``replace``, ~10 µs) would only blank the
    raw text, which neither the key nor the engine reads. Genres the catalog
    lacks are refused first (``check_filter_names``): the canonical query holds
    them lowercased, and the client's 400 names them as typed.
    """
    if query.genres or query.fields != HIT_FIELDS or query.facets:
        if query.genres:
            check_filter_names(engine.snapshot, query)
        return canonical_query(query)
    return query


def _searched(
    engine: SearchEngine, receive: Receive, query: SearchQuery, deadline: Deadline
) -> Awaitable[SearchResult]:
    """``query`` searched for one request: bounded by its ``deadline``, stopped if its
    client goes away (http/disconnect.py)."""
    return unless_disconnected(receive, deadline, lambda: engine.search(query, deadline))


class FirstSighting(NamedTuple):
    """The answer to a search asked for the first time, computed for its request alone."""

    body: bytes
    last_modified: str  # what a stored answer computed now would carry ("" if unknown)


class SearchResponder:
    """Answers parsed searches from the cache, computing (once) what it lacks."""

    def __init__(
        self, settings: Settings, cache: ResultCache | None, counters: CacheCounters
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.sender = EntrySender(settings, counters)
        self.engine: SearchEngine | None = None
        # The rule files of the engine last computed with, looked up once, not per miss.
        self._files_of: tuple[SearchEngine | None, Any] = (None, None)

    async def answer(
        self, scope: Scope, receive: Receive, query: SearchQuery
    ) -> tuple[CachedResponse | FirstSighting, bool]:
        """The entry answering ``query``, and whether this request computed it (a miss of
        its own, as opposed to one found in a level or computed by a concurrent request);
        or, for a search no level holds and this process has not seen before, its answer
        computed and not stored (``FirstSighting``, decision 0039).

        The caller sends it (http/search_route.py): a miss it computed goes out through
        the same lean header block as a search with the cache off (``send_fresh``).
        """
        # Set at start-up (start_result_cache): no app-state lookup per search.
        engine = self.engine or scope["app"].state.engine
        query = _canonical(query, engine)
        cache = self.cache
        # This request's deadline bounds a search it computes; its client going
        # away cancels it (http/disconnect.py). Only a search watches the client:
        # an answer found in a level costs no watcher task.
        deadline = engine.deadline()
        computed_here = False

        def compute() -> Awaitable[CachedResponse]:
            nonlocal computed_here
            computed_here = True
            return unless_disconnected(
                receive, deadline, lambda: self._compute(engine, query, deadline)
            )

        # With the cache off the route computes and sends the search itself (compute_uncached).
        assert cache is not None
        snapshot = engine.snapshot
        version = snapshot.version
        if not cache.is_current(version):  # the check inline: no coroutine per request
            await cache.ensure_current(version, snapshot.imported_at)
        key = canonical_key(cache.prefix, query)
        query_string: bytes = scope["query_string"]
        cache.search_log.record(query_string)
        now = time.time()
        found = cache.lookup_now(key, now)
        if found is None and cache.is_first_sighting(key):
            flight = cache.flight_of(key)
            # Unless a request is computing it already (L1's counts are halved now and
            # then): then this one waits for it as any miss does, below.
            if cache.singleflight.claim_if_free(flight):
                return await self._first_sighting(
                    cache, engine, receive, deadline, query, key, flight, now
                )
        try:
            entry = await cache.answer_looked_up(key, found, now, compute)
        except SearchCancelled:
            if deadline.is_cancelled:
                raise
            # Single-flight: the request computing this key for us lost its client.
            # Ours is still here, so compute it (once more, for whoever waits now).
            entry = await cache.get_or_compute(key, compute)
        cache.remember_alias(query_string, key)
        # A stale entry's background refresh calls ``compute`` only once this request
        # has returned (no await in between): the flag is this request's own miss. It
        # only chooses how the entry is sent; the bytes and headers are the same.
        return entry, computed_here

    async def _first_sighting(
        self,
        cache: ResultCache,
        engine: SearchEngine,
        receive: Receive,
        deadline: Deadline,
        query: SearchQuery,
        key: str,
        flight: str,
        now: float,
    ) -> tuple[FirstSighting, bool]:
        """A search no level holds and this process has not seen (decision 0039): computed
        and sent as with the cache off, with the headers a stored answer would have; no
        entry, tags, store or alias. The caller claimed its single-flight (``flight``: a
        dict slot, no future): a request for the same search arriving meanwhile waits
        for it instead of searching again, and then (asked twice) it is stored for both."""
        flights = cache.singleflight
        cache.counters.misses += 1
        cache.counters.first_sightings += 1
        version = engine.snapshot.version
        try:
            result = await _searched(engine, receive, query, deadline)
            body = render_search(result)
        except BaseException as exc:
            flights.fail(flight, exc)
            raise

        def stored_for_the_waiters() -> CachedResponse:
            entry = self._entry(engine, query, result, body, version)
            cache.store_computed(key, entry)
            return entry

        flights.settle_if_awaited(flight, stored_for_the_waiters)
        return FirstSighting(body, cache.last_modified(now)), True

    async def compute_uncached(
        self, engine: SearchEngine, receive: Receive, query: SearchQuery
    ) -> bytes:
        """The body of a search computed for one request with the cache off: nothing
        stored or tagged; the same bytes ``answer`` would send (http/search_route.py)."""
        query = _canonical(query, engine)
        return render_search(await _searched(engine, receive, query, engine.deadline()))

    async def _compute(
        self, engine: SearchEngine, query: SearchQuery, deadline: Deadline | None = None
    ) -> CachedResponse:
        version = engine.snapshot.version
        result = await engine.search(query, deadline)
        return self._entry(engine, query, result, render_search(result), version)

    def _entry(
        self,
        engine: SearchEngine,
        query: SearchQuery,
        result: SearchResult,
        body: bytes,
        version: int,
    ) -> CachedResponse:
        """The entry of ``body``, ``query``'s answer computed on catalog ``version``."""
        now = time.time()
        if self.cache is None:  # sent once, never stored: nothing to tag
            return new_entry(body, (), None, now, 0.0, 0.0)
        files_of, files = self._files_of
        if files_of is not engine:
            files = _rule_files(engine)
            self._files_of = (engine, files)
        rules = files.current() if files is not None else None
        return self.cache.make_entry(
            body, page_tags(query, result, version, rules), now, computed_on=version
        )

    async def warm_one(self, query_string: bytes) -> bool:
        """Compute one logged search unless a fresh answer is stored; True if it searched."""
        cache, engine = self.cache, self.engine
        if cache is None or engine is None:
            return False
        query = parse_search(query_pairs(query_string), **self.settings.query_limits)
        if query.explain:
            return False
        query = _canonical(query, engine)
        snapshot = engine.snapshot
        await cache.ensure_current(snapshot.version, snapshot.imported_at)
        key = canonical_key(cache.prefix, query)
        now = time.time()
        found = await cache.lookup(key, now)
        if found is not None and now < found.fresh_until:
            return False
        await cache.store(key, await self._compute(engine, query), everywhere=True)
        return True


async def start_result_cache(app: Starlette, settings: Settings, tasks: Any) -> None:
    """Put the cache, its counters and the responder on ``app.state``; start its background work.

    Called from the app's lifespan once the engine is open; ``tasks`` is its task group.
    """
    counters = CacheCounters()
    cache = ResultCache.open(settings, counters)
    if cache is not None:
        engine = app.state.engine
        cache.rules.read = engine.rules_version
        cache.doc_count = lambda word: engine.snapshot.vocabulary.doc_count(word)
        cache.change_source = catalog_change_source(engine)
    responder = SearchResponder(settings, cache, counters)
    responder.engine = app.state.engine
    app.state.cache_counters = counters
    app.state.result_cache = cache
    app.state.search_responder = responder
    if cache is None:
        return
    cache.warm_one = responder.warm_one
    snapshot = app.state.engine.snapshot
    await cache.ensure_current(snapshot.version, snapshot.imported_at)
    tasks.start_soon(cache.follow_invalidations)
    tasks.start_soon(cache.flush_search_log, SEARCH_LOG_FLUSH_SECONDS)
    tasks.start_soon(_follow_catalog_version, cache, app.state.engine, settings)
    cache.start_warming()


def catalog_change_source(engine: SearchEngine) -> ChangeSource:
    """The catalog's log of movie writes, read through the engine (catalog/changes.py):
    None from it (an import or pruning since) makes the cache re-key."""
    from reelsearch.catalog.changes import ChangesUnavailable, changes_since

    async def read(since: int, until: int) -> list[MovieChange] | None:
        try:
            return await changes_since(engine, since, until=until)
        except ChangesUnavailable:
            return None

    return read


async def _follow_catalog_version(
    cache: ResultCache, engine: SearchEngine, settings: Settings
) -> None:
    """Re-key (and start warming) as soon as the engine serves a new catalog, not at the
    next request: the popular searches are recomputed before they are asked."""
    while True:
        await anyio.sleep(settings.catalog_poll_seconds)
        snapshot = engine.snapshot
        if not cache.is_current(snapshot.version):
            await cache.ensure_current(snapshot.version, snapshot.imported_at)


async def stop_result_cache(app: Starlette) -> None:
    cache: ResultCache | None = getattr(app.state, "result_cache", None)
    if cache is not None:
        with anyio.CancelScope(shield=True):
            await cache.close()
