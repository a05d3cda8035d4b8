"""Cache keys: one canonical form per request, plus every version its answer depends on.

``parse_search`` already unicode-normalizes and case-folds the words,
collapses whitespace and fills defaults; ``canonical_query`` merges the
remaining equivalent spellings (genre names are case-insensitive and
unordered, ``fields`` and ``facets`` are sets), and the search computed for
the cache is this canonical query, so every spelling gets the same bytes.
The key hashes it with the catalog's identity (version and import time),
the relevance rules' content and the API version: a new catalog or an
edited synonym file gives new keys, and old entries are never read again.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime

import anyio
import anyio.to_thread
import orjson

from reelsearch.config import Settings
from reelsearch.search.query import FACETS, HIT_FIELDS, SearchQuery

# Bumped when the response format changes, so old stored bodies are not served.
API_VERSION = "v1.1"
_KEY_BYTES = 12  # 96 bits: 16 base64 characters; collisions are out of reach
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def canonical_query(query: SearchQuery) -> SearchQuery:
    """``query`` with equivalent spellings merged; same results, same body bytes."""
    return replace(
        query,
        text="",  # the words, quotes and exclusions parsed from it are what counts
        genres=tuple(sorted({name.lower() for name in query.genres})),
        fields=tuple(name for name in HIT_FIELDS if name in query.fields),
        facets=tuple(name for name in FACETS if name in query.facets),
    )


def query_material(q: SearchQuery) -> bytes:
    """A canonical query as bytes: what the key hashes besides the versions."""
    return orjson.dumps(
        [
            q.words, q.last_is_prefix, q.quoted, q.excluded, q.year_from, q.year_to,
            q.genres, q.genres_mode, q.min_rating, q.min_votes, q.kind, q.sort, q.limit,
            q.offset, q.fields, q.facets,
        ]
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeyContext:
    """Everything besides the request that a cached answer depends on."""

    catalog_version: int
    imported_at: str  # the catalog's import time (ISO 8601); "" if unknown
    rules_version: str
    namespace: str

    @property
    def prefix(self) -> bytes:
        return orjson.dumps(
            [API_VERSION, self.namespace, self.catalog_version, self.imported_at,
             self.rules_version]
        )  # fmt: skip

    @property
    def last_modified(self) -> str:
        """The catalog's import time as an HTTP-date (RFC 9110), or ""."""
        return http_date(self.imported_at)


@functools.lru_cache(maxsize=16)
def http_date(iso_moment: str) -> str:
    """``iso_moment`` (ISO 8601 with a zone) as an HTTP-date, or "" if it is not one.

    Read for every entry made (each miss): parsing and formatting took ~3 µs,
    and a process sees one import time for thousands of misses.
    """
    try:
        moment = datetime.fromisoformat(iso_moment)
    except ValueError:
        return ""
    return format_datetime(moment, usegmt=True) if moment.tzinfo else ""


def cache_key(prefix: bytes, query: SearchQuery) -> str:
    """The key of ``query`` under a context's ``prefix``."""
    return canonical_key(prefix, canonical_query(query))


def canonical_key(prefix: bytes, canonical: SearchQuery) -> str:
    """``cache_key`` of a query already passed through ``canonical_query``."""
    digest = hashlib.blake2b(prefix + query_material(canonical), digest_size=_KEY_BYTES).digest()
    # base64.urlsafe_b64encode without its two Python frames (a key per miss).
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE).decode("ascii")


class RulesVersion:
    """The version of the relevance rules the engine answers with.

    Read from the engine (``SearchEngine.rules_version``), whose poller re-reads
    the rule files: no file system call on the request path, and a key changes
    exactly when the rules the engine searches with do, never a poll interval
    before them. Empty until an engine is attached (``reelsearch cache stats``
    and ``clear`` compute no keys).
    """

    def __init__(self) -> None:
        self.read: Callable[[], str] = str

    def current(self) -> str:
        return self.read()


async def read_imported_at(settings: Settings) -> str:
    """The catalog's ``imported_at`` (catalog_meta), read once per catalog version."""
    sql = "SELECT value FROM catalog_meta WHERE key = 'imported_at'"
    try:
        if settings.backend == "postgresql":
            import asyncpg

            conn = await asyncpg.connect(settings.postgres_dsn, timeout=5)
            try:
                found = await conn.fetchval(sql)
            finally:
                await conn.close()
            return str(found or "")
        # In a thread: a connection opened on the event loop would stall every request of
        # this worker, and since the documents API this runs once per write, not per import.
        return await anyio.to_thread.run_sync(_sqlite_imported_at, settings, sql)
    except Exception:  # an older catalog without the row, or a database hiccup
        return ""


def _sqlite_imported_at(settings: Settings, sql: str) -> str:
    with closing(sqlite3.connect(f"file:{settings.sqlite_path}?mode=ro", uri=True)) as conn:
        row = conn.execute(sql).fetchone()
    return str(row[0]) if row else ""
