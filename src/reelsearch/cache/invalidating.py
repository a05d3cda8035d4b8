"""Invalidation across levels and processes: admin orders, movie writes, pub/sub.

The part of ``ResultCache`` (a mixin of it) that drops entries: by key, tag or
everything (the admin endpoint), and what a movie write reaches (decision
0015), in this process's levels and, through Redis pub/sub, in every other
process's memory level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from reelsearch.cache.base import CacheLevel
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.invalidation import ChangeLike, ChangeMatcher, DocCount
from reelsearch.cache.keys import KeyContext, RulesVersion
from reelsearch.cache.memory import MemoryLevel
from reelsearch.cache.redis import RedisGuard
from reelsearch.cache.writes import (
    ChangeSource,
    WriteHistory,
    changes_from_message,
    changes_message,
    drop_reached,
)
from reelsearch.config import Settings

log = logging.getLogger("reelsearch.cache")


class Invalidating:
    """Dropping entries; mixed into ``ResultCache``, whose attributes it uses."""

    settings: Settings
    levels: list[CacheLevel]
    memory: MemoryLevel | None
    guard: RedisGuard | None
    counters: CacheCounters
    channel: str
    process_id: str
    aliases: dict[bytes, str]
    rules: RulesVersion
    context: KeyContext | None
    engine_version: int | None
    writes: WriteHistory
    change_source: ChangeSource | None
    doc_count: DocCount | None

    async def _follow_writes(
        self, context: KeyContext | None, catalog_version: int, imported_at: str
    ) -> bool:
        """Catch up with writes (not an import) up to ``catalog_version``, keeping the keys;
        False when the move is not writes alone, or the catalog's log cannot tell."""
        if (
            context is None
            or self.engine_version is None
            or catalog_version < self.engine_version
            or context.imported_at != imported_at
            or context.rules_version != self.rules.current()
        ):
            return False
        if catalog_version <= self.writes.applied:
            return True  # applied already (pub/sub from the process that wrote)
        source = self.change_source
        if source is None:
            return False
        try:
            changes = await source(self.writes.applied, catalog_version)
        except Exception as exc:  # the log unreadable: re-keying is always safe
            log.warning("cache: could not read the catalog's change log (%s); re-keying", exc)
            return False
        if changes is None:
            return False
        await self.apply_writes(catalog_version, changes, since=self.writes.applied)
        return True

    async def apply_writes(
        self, version: int, changes: Sequence[ChangeLike], *, since: int,
        shared: bool = True, publish: bool = True,
    ) -> int:  # fmt: skip
        """Drop what the writes after catalog version ``since`` up to ``version`` reach
        (``changes``: all of them): this process's L1, the shared levels (``shared``), and
        every other process's L1 (``publish``, Redis pub/sub).

        The documents API may call this right after a write commits; each process's
        catalog poll calls it too (``ensure_current``), for versions not applied yet.
        Writes must be applied without a gap: ``since`` after what is applied here is
        refused (the poll reads the missing ones from the catalog's log instead).
        """
        if version <= self.writes.applied or since > self.writes.applied:
            return 0
        matcher = ChangeMatcher(changes, self.doc_count)
        self.writes.add(version, matcher)
        levels = [lv for lv in self.levels if shared or lv is self.memory]
        dropped = await drop_reached(levels, matcher)
        self.counters.invalidations["write"] += 1
        self.counters.invalidated_entries["write"] += dropped
        if publish:
            await self._publish(changes_message(since, version, changes))
        log.info("cache: catalog write %d (%d movies) dropped %d entries",
                 version, len(changes), dropped)  # fmt: skip
        return dropped

    def _reached_by_writes(self, entry: CachedResponse) -> bool:
        """Whether writes applied after ``entry`` was computed may have changed it."""
        writes = self.writes
        version = entry.version()  # without making pending tags
        if version >= writes.applied:
            return False  # no write applied since it was computed (every miss, mostly)
        return writes.reaches(entry.tags, version)

    async def invalidate(
        self, *, key: str | None = None, tag: str | None = None, cause: str = "admin"
    ) -> int:
        """Drop one key, one tag, or (neither given) everything, in every process."""
        dropped = 0
        for level in self.levels:
            if key is not None:
                dropped += int(await level.delete(key))
            elif tag is not None:
                dropped += await level.delete_tag(tag)
            else:
                await level.clear()
        self.aliases = {}
        self.counters.invalidations[cause] += 1
        await self._publish({"key": key, "tag": tag})
        return dropped

    async def _publish(self, message: dict[str, Any]) -> None:
        guard = self.guard
        if guard is None:
            return
        payload = orjson.dumps({**message, "from": self.process_id})
        await guard.call("publish", lambda: guard.client.publish(self.channel, payload), 0)

    async def _apply(self, payload: bytes) -> None:
        """Another process invalidated: drop the same from this process's L1."""
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict) or message.get("from") == self.process_id:
            return
        if "write" in message:
            found = changes_from_message(message)
            if found is not None and self.context is not None:
                since, version, changes = found
                await self.apply_writes(version, changes, since=since, shared=False,
                                        publish=False)  # fmt: skip
            return
        memory = self.memory
        self.aliases = {}
        self.counters.invalidations["remote"] += 1
        if memory is None:
            return
        if message.get("key"):
            await memory.delete(str(message["key"]))
        elif message.get("tag"):
            await memory.delete_tag(str(message["tag"]))
        else:
            memory.drop_all()

    async def follow_invalidations(self) -> None:
        """Listen on the channel for the life of the process, reconnecting after failures."""
        guard = self.guard
        if guard is None or self.memory is None:
            return
        lost = False
        while True:
            pubsub = guard.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                if lost and self.memory is not None:
                    # Messages sent while we were away are lost: drop what they might
                    # have named. Once per outage, not per retry, so L1 keeps serving
                    # while Redis is down.
                    self.memory.drop_all()
                    self.aliases = {}
                lost = False
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._apply(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or restarted: L1 may have missed a message
                if not lost:
                    log.warning("cache invalidation channel lost (%s); reconnecting", exc)
                lost = True
                await asyncio.sleep(self.settings.redis_retry_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
