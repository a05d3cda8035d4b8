"""``reelsearch cache stats|clear|warm``: the shared levels (Redis, disk) from a terminal.

L1 lives inside each server process: ``clear`` reaches it through the
invalidation channel (with Redis); ``stats`` of a running server's L1 are at
``GET /v1/admin/cache``. ``warm`` computes the most asked searches of the
search log into the shared levels, where every server finds them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson

from reelsearch.cache.service import ResultCache
from reelsearch.config import Settings


def run_cache_command(settings: Settings, action: str, top: int) -> str:
    """Run ``action`` ("stats", "clear" or "warm"); the text to print."""
    return asyncio.run(_run(settings, action, top))


async def _run(settings: Settings, action: str, top: int) -> str:
    shared = [name for name in settings.cache_levels if name != "memory"]
    if not shared:
        return "no shared cache level is configured (REELSEARCH_CACHE, REELSEARCH_REDIS_URL)"
    cache = ResultCache.open(replace(settings, cache=",".join(shared)))
    assert cache is not None
    try:
        if action == "stats":
            return orjson.dumps(await cache.stats(), option=orjson.OPT_INDENT_2).decode()
        if action == "clear":
            await cache.invalidate(cause="cli")
            return f"cleared: {', '.join(shared)} (and every server's memory level via Redis)"
        return f"warmed {await _warm(settings, cache, top)} searches into {', '.join(shared)}"
    finally:
        await cache.close()


async def _warm(settings: Settings, cache: ResultCache, top: int) -> int:
    from reelsearch.cache.counters import CacheCounters
    from reelsearch.cache.warming import warm
    from reelsearch.http.search_cache import SearchResponder
    from reelsearch.search.backends import open_search_engine

    engine = await open_search_engine(settings)
    cache.rules.read = engine.rules_version
    try:
        responder = SearchResponder(settings, cache, CacheCounters())
        responder.engine = engine
        query_strings = await cache.search_log.top(top or settings.cache_warm_top)
        return await warm(query_strings, responder.warm_one, cpu_share=1.0)
    finally:
        await engine.close()
