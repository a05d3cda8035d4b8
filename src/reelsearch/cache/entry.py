"""``CachedResponse``: a finished answer as every cache level stores it.

A hit is a lookup and a write: the body is already encoded, its ETag and
Last-Modified already formatted, and each compressed variant is made at most
once per entry (on first request for that coding) and kept beside it.
Nothing in a stored answer varies per request, so one query gives the same
bytes and the same ETag in every process and after a restart.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import orjson

from reelsearch.cache.compression import COMPRESSORS

if TYPE_CHECKING:
    from reelsearch.cache.keys import KeyContext

# Fixed cost of an entry beyond its bytes (object, dict slots, key): counted
# against the byte bound so a level full of tiny entries still stays bounded.
ENTRY_OVERHEAD_BYTES = 400
_HEADER_LENGTH = struct.Struct(">I")
# Bodies this long may get compressed variants (compress_min_bytes can't go lower usefully).
VARIANT_RESERVE_FROM = 256
# Tags not made yet are counted as this many bytes (a page of ten movies and a few
# words makes 100-250).
PENDING_TAG_BYTES = 200
TagSource = Callable[[], tuple[str, ...]]
# What an entry holds until it makes its first compressed variant or header block: one
# shared empty mapping, not two dicts per entry (each container a held answer keeps
# counts towards the collector's generation-0 threshold; decision 0029).
_NOTHING_YET: Mapping[str, Any] = MappingProxyType({})


def tags_of(blob: bytes) -> tuple[str, ...]:
    """The tags of a ``CachedResponse.to_bytes`` blob, reading only its header."""
    try:
        (length,) = _HEADER_LENGTH.unpack_from(blob)
        meta = orjson.loads(blob[_HEADER_LENGTH.size : _HEADER_LENGTH.size + length])
        return tuple(meta["t"])
    except (struct.error, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"damaged cache entry: {exc}") from None


def entry_version(tags: tuple[str, ...]) -> int:
    """The catalog version an entry was computed on (its ``v:`` tag), or -1 if it has none."""
    for tag in tags:
        if tag.startswith("v:"):
            try:
                return int(tag[2:])
            except ValueError:
                return -1
    return -1


def strong_etag(body: bytes) -> str:
    """A strong validator of the identity body: 16 hex digits of BLAKE2b, quoted."""
    return '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'


class CachedResponse:
    """One cacheable answer: its bytes, validators, freshness and what it depends on.

    The tags (what a write must look at: "v:<catalog version>", "w:<word>",
    "m:<movie id>", ...) may be given as a ``tag_source`` instead, made on first
    read of ``tags``: a computed answer's tags cost ~10 µs, and most answers are
    never looked at by a write nor stored in a shared level (decision 0019).
    ``computed_on`` then gives the catalog version without making them.
    """

    __slots__ = (
        "body", "etag", "last_modified", "created_at", "fresh_until", "stale_until",
        "media_type", "variants", "wire", "computed_on", "_tags", "_tag_source",
    )  # fmt: skip

    def __init__(
        self,
        body: bytes,
        etag: str,
        last_modified: str,  # an HTTP-date, or "" when the catalog's import time is unknown
        created_at: float,  # wall-clock seconds: when it was computed
        fresh_until: float,  # served as a hit until then
        stale_until: float,  # then served stale (and refreshed) until this
        tags: tuple[str, ...] = (),
        media_type: str = "application/json",
        variants: dict[str, bytes] | None = None,
        *,
        tag_source: TagSource | None = None,
        computed_on: int | None = None,
    ) -> None:
        self.body = body
        self.etag = etag
        self.last_modified = last_modified
        self.created_at = created_at
        self.fresh_until = fresh_until
        self.stale_until = stale_until
        self.media_type = media_type
        # coding -> compressed body; made lazily, once per coding (a new dict each time).
        self.variants: Mapping[str, bytes] = variants if variants is not None else _NOTHING_YET
        # Per-process only (never stored): the header blocks per coding, built on first send.
        self.wire: Mapping[str, Any] = _NOTHING_YET
        self.computed_on = computed_on
        self._tags: tuple[str, ...] | None = None if tag_source is not None else tags
        self._tag_source = tag_source

    @property
    def tags(self) -> tuple[str, ...]:
        """What the answer depends on, for targeted invalidation (made now if pending)."""
        # A write's matcher reads tags in a worker thread while the event loop may too:
        # the source is read before the tags and dropped only after they are set, so a
        # reader that finds no tags always finds the source (both may make them: the
        # same tuple either way), never "no tags and no source".
        source = self._tag_source
        tags = self._tags
        if tags is None:
            tags = source() if source is not None else ()
            self._tags = tags
            self._tag_source = None
        return tags

    @property
    def has_tags(self) -> bool:
        """Whether the tags are made (reading ``tags`` would cost nothing)."""
        return self._tags is not None

    def version(self) -> int:
        """The catalog version it was computed on, without making pending tags; -1 if unknown."""
        if self.computed_on is not None:
            return self.computed_on
        return entry_version(self.tags)

    def __repr__(self) -> str:
        return (
            f"CachedResponse(etag={self.etag!r}, bytes={len(self.body)}, "
            f"fresh_until={self.fresh_until!r}, tags={self._tags!r})"
        )

    @property
    def size(self) -> int:
        """Bytes this entry holds, as the byte bounds count them."""
        # Variants are made on demand after the entry is counted; JSON compresses to
        # well under a third, so the body's size again covers all three codings.
        # (Read on every store: C-level sums, no generator, no max().)
        body = len(self.body)
        variants = self.variants
        compressed = sum(map(len, variants.values())) if variants else 0
        reserve = body if body >= VARIANT_RESERVE_FROM else 0
        tags = self._tags
        return (
            body
            + (compressed if compressed > reserve else reserve)
            + (sum(map(len, tags)) if tags is not None else PENDING_TAG_BYTES)
            + ENTRY_OVERHEAD_BYTES
        )

    def variant(self, encoding: str) -> bytes:
        """The body in ``encoding`` ("identity" or one of compression.ENCODINGS)."""
        if encoding == "identity":
            return self.body
        found = self.variants.get(encoding)
        if found is None:
            found = COMPRESSORS[encoding](self.body)
            # Replaced, not changed in place: a reader in another thread (a disk write's
            # to_bytes) sees the old mapping or the new one, never one being changed.
            self.variants = {**self.variants, encoding: found}
        return found

    def to_bytes(self) -> bytes:
        """One blob for Redis and disk: a length-prefixed JSON header, then the bodies."""
        encodings = sorted(self.variants)
        header = orjson.dumps(
            {
                "etag": self.etag,
                "lm": self.last_modified,
                "c": self.created_at,
                "f": self.fresh_until,
                "s": self.stale_until,
                "t": self.tags,
                "mt": self.media_type,
                "b": len(self.body),
                "v": [[name, len(self.variants[name])] for name in encodings],
            }
        )
        parts = [_HEADER_LENGTH.pack(len(header)), header, self.body]
        parts.extend(self.variants[name] for name in encodings)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, blob: bytes) -> CachedResponse:
        """The inverse of ``to_bytes``; raises ValueError on a damaged blob."""
        try:
            (length,) = _HEADER_LENGTH.unpack_from(blob)
            start = _HEADER_LENGTH.size + length
            meta = orjson.loads(blob[_HEADER_LENGTH.size : start])
            body_end = start + meta["b"]
            body = blob[start:body_end]
            variants: dict[str, bytes] = {}
            offset = body_end
            for name, size in meta["v"]:
                variants[name] = blob[offset : offset + size]
                offset += size
            if offset != len(blob) or len(body) != meta["b"]:
                raise ValueError("cached entry has the wrong length")
            return cls(
                body=body,
                etag=meta["etag"],
                last_modified=meta["lm"],
                created_at=meta["c"],
                fresh_until=meta["f"],
                stale_until=meta["s"],
                tags=tuple(meta["t"]),
                media_type=meta["mt"],
                variants=variants,
            )
        except (struct.error, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"damaged cache entry: {exc}") from None


def new_entry(
    body: bytes,
    tags: tuple[str, ...] | TagSource,
    context: KeyContext | None,
    now: float,
    fresh_seconds: float,
    stale_seconds: float,
    *,
    computed_on: int | None = None,
) -> CachedResponse:
    """An entry for ``body``; ``tags`` made now or by a function when first needed."""
    # Asked "callable?", not "a tuple?": a source may be a tuple itself (cache/tags.py).
    made, source = ((), tags) if callable(tags) else (tags, None)
    return CachedResponse(
        body,
        strong_etag(body),
        context.last_modified if context is not None else "",
        now,
        now + fresh_seconds,
        now + fresh_seconds + stale_seconds,
        made,
        tag_source=source,
        computed_on=computed_on,
    )
