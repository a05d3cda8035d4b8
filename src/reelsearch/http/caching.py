"""Sending a ``CachedResponse``: content coding negotiation, validators and 304s.

Decided per entry and coding once (``_Wire``): the header block of a 200 and
of a 304, so a request costs a header lookup, a compare and a write. A 304
carries only what RFC 9110 (15.4.5) asks of it: ETag, Vary, Cache-Control
(and the server's Date); no body, no Content-Type, no Server-Timing.

ETags are strong and name the coding (``"<hash>"`` for identity,
``"<hash>-br"`` for brotli): each coding is a different representation.
``If-None-Match`` compares the hash, so a client holding any coding of this
answer gets a 304 for it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import parsedate_to_datetime
from typing import Any

from reelsearch.cache.compression import COMPRESSORS, ENCODINGS
from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse, new_entry, strong_etag
from reelsearch.cache.heap import untrack
from reelsearch.config import Settings

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# A header block kept in an entry: ASGI servers take any sequence of pairs.
Block = tuple[tuple[bytes, bytes], ...]
_MAX_REMEMBERED_HEADERS = 256
# Header lines every JSON answer sends as they are (one tuple, not one per response).
_JSON_TYPE = (b"content-type", b"application/json")
_VARY = (b"vary", b"accept-encoding")
# An answer for its requester alone (an admin's explained search): a shared cache that
# stored it would hand the admin's view to the next client, so no cache keeps it.
_PRIVATE = (b"cache-control", b"private, no-store")
NOT_ACCEPTABLE_BODY = (
    b'{"error":{"code":"not_acceptable","message":"no content coding this server '
    b'offers (zstd, br, gzip, identity) is acceptable to the client","param":null}}'
)


def parse_accept_encoding(value: str) -> dict[str, float]:
    """Coding -> q (RFC 9110 12.5.3); "*" stands for every coding not named."""
    found: dict[str, float] = {}
    for item in value.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(raw.strip())))
                except ValueError:
                    q = 0.0  # a malformed weight accepts nothing rather than guessing
        found[name] = q
    return found


def choose_encoding(value: str, compressible: bool) -> str | None:
    """The coding to send: the client's highest q, ties to the smaller output; None: 406.

    Below the size threshold (``compressible`` false) identity is preferred
    whenever it is acceptable.
    """
    weights = parse_accept_encoding(value)
    star = weights.get("*")
    # identity is acceptable unless excluded (identity;q=0, or *;q=0 without it), and is
    # preferred over a coding only when the client ranks it higher explicitly.
    named_identity = weights.get("identity")
    identity_q = named_identity if named_identity is not None else (0.0 if star == 0 else 1.0)
    if not compressible and identity_q > 0:
        return "identity"
    best, best_q = None, 0.0
    for name in ENCODINGS:
        q = weights.get(name, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = name, q
    if best is not None and (named_identity is None or best_q >= named_identity):
        return best
    return "identity" if identity_q > 0 else best


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (as If-None-Match asks) of the hash part, ignoring the coding suffix."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.strip('"')
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        if tag.split("-", 1)[0] == wanted:
            return True
    return False


def is_not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    if not last_modified:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparsable date is ignored (RFC 9110 13.1.3)


def request_validators(
    request_headers: list[tuple[bytes, bytes]],
) -> tuple[bytes, bytes | None, bytes | None]:
    """The request's Accept-Encoding (b"" if absent), If-None-Match and
    If-Modified-Since (None if absent), in one pass over its headers.

    Repeated lines of the two list headers are one list, their values joined
    by commas (RFC 9110 5.3), not the last line alone.
    """
    accept = b""
    if_none_match = if_modified_since = None
    for name, value in request_headers:
        if name == b"accept-encoding":
            accept = accept + b", " + value if accept else value
        elif name == b"if-none-match":
            if_none_match = value if if_none_match is None else if_none_match + b", " + value
        elif name == b"if-modified-since":
            if_modified_since = value
    return accept, if_none_match, if_modified_since


class EntrySender:
    """Writes cached entries to ASGI ``send`` with the deployment's caching headers."""

    def __init__(self, settings: Settings, counters: CacheCounters) -> None:
        self.counters = counters
        self.min_size = settings.compress_min_bytes
        cache_control = f"public, max-age={settings.http_max_age}"
        if settings.http_stale_while_revalidate:
            cache_control += f", stale-while-revalidate={settings.http_stale_while_revalidate}"
        self.cache_control = cache_control.encode()
        self._cache_control_header = (b"cache-control", self.cache_control)
        # Header lines every entry's block shares, out of the collector's view as the
        # blocks are (``send``): frozen with the heap at start-up, they would stay tracked.
        untrack(_JSON_TYPE, _VARY, self._cache_control_header)
        self._choices: dict[tuple[bytes, bool], str | None] = {}
        # One Last-Modified header line per value (a process sees one per import or
        # write), shared by every entry's header block instead of one copy in each.
        self._last_modified: dict[str, tuple[bytes, bytes]] = {}

    async def send_computed(
        self,
        send: Send,
        body: bytes,
        request_headers: list[tuple[bytes, bytes]],
        started: float,
        *,
        head: bool = False,
        last_modified: str = "",
    ) -> None:
        """Send a body computed for this request alone (the result cache is off, or the
        search is a first sighting: ``last_modified`` is then what its entry would carry).

        The usual case, a request with no validator whose client takes the
        identity coding, gets the header block an entry's would be, from
        precomputed parts; anything else (a conditional request, a compressed
        coding, a 406) goes through ``send`` with an entry made for it.
        """
        line = self._last_modified_line(last_modified) if last_modified else None
        if await self._send_lean(send, body, None, line, request_headers, started, head):
            return
        entry = new_entry(body, (), None, time.time(), 0.0, 0.0)
        entry.last_modified = last_modified
        server_ms = (time.perf_counter() - started) * 1000
        await self.send(send, entry, request_headers, server_ms, head=head)

    async def send_fresh(
        self,
        send: Send,
        entry: CachedResponse,
        request_headers: list[tuple[bytes, bytes]],
        started: float,
        *,
        head: bool = False,
    ) -> None:
        """Send an entry this request has just computed (its own miss).

        The same bytes and headers as ``send``; the usual request (no validator,
        identity) gets them from precomputed parts as ``send_computed`` does,
        without building the entry's per-coding header blocks (``wire``): most
        misses on a Zipf stream are never asked again, and a block kept in each
        of them would be work and objects for the garbage collector to walk.
        """
        last_modified = entry.last_modified
        if not await self._send_lean(
            send, entry.body, entry.etag,
            self._last_modified_line(last_modified) if last_modified else None,
            request_headers, started, head,
        ):  # fmt: skip
            server_ms = (time.perf_counter() - started) * 1000
            await self.send(send, entry, request_headers, server_ms, head=head)

    async def _send_lean(
        self,
        send: Send,
        body: bytes,
        etag: str | None,
        last_modified: tuple[bytes, bytes] | None,
        request_headers: list[tuple[bytes, bytes]],
        started: float,
        head: bool,
    ) -> bool:
        """Send ``body`` as a 200 in the identity coding if the request is unconditional
        and its client takes identity (what ``send`` would choose); False (nothing sent)
        otherwise. The header block is ``_headers``' for identity, in the same order."""
        accept, if_none_match, if_modified_since = request_validators(request_headers)
        if if_none_match is not None or if_modified_since is not None:
            return False
        if self._choose(accept, len(body) >= self.min_size) != "identity":
            return False
        self.counters.bytes_sent += len(body)
        headers = [
            _JSON_TYPE,
            (b"content-length", b"%d" % len(body)),
            (b"etag", (etag or strong_etag(body)).encode()),
            self._cache_control_header,
            _VARY,
        ]
        if last_modified is not None:
            headers.append(last_modified)
        headers.append(
            (b"server-timing", b"app;dur=%.3f" % ((time.perf_counter() - started) * 1000))
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
        return True

    async def send_private(
        self,
        send: Send,
        body: bytes,
        request_headers: list[tuple[bytes, bytes]],
        started: float,
        *,
        head: bool = False,
    ) -> None:
        """Send a body computed for its requester alone (``explain=true``, admin only).

        The coding is negotiated as for every search answer (``_choose``): a 406
        when nothing offered is acceptable, compressed when the client accepts a
        coding and the body is over the threshold. No validators (it is never
        stored, so never revalidated) and ``Cache-Control: private, no-store``.
        """
        accept, _, _ = request_validators(request_headers)
        encoding = self._choose(accept, len(body) >= self.min_size)
        if encoding is None:
            await _send_plain(send, 406, NOT_ACCEPTABLE_BODY)
            return
        sent = body if encoding == "identity" else COMPRESSORS[encoding](body)
        self.counters.bytes_sent += len(sent)
        self.counters.bytes_saved += len(body) - len(sent)
        headers = [_JSON_TYPE, (b"content-length", b"%d" % len(sent)), _PRIVATE, _VARY]
        if encoding != "identity":
            headers.append((b"content-encoding", encoding.encode()))
        headers.append(
            (b"server-timing", b"app;dur=%.3f" % ((time.perf_counter() - started) * 1000))
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else sent})

    def _choose(self, accept_encoding: bytes, compressible: bool) -> str | None:
        remembered = (accept_encoding, compressible)
        found = self._choices.get(remembered, "?")
        if found == "?":
            if len(self._choices) >= _MAX_REMEMBERED_HEADERS:
                self._choices.clear()
            found = choose_encoding(accept_encoding.decode("latin-1"), compressible)
            self._choices[remembered] = found
        return found

    def _last_modified_line(self, value: str) -> tuple[bytes, bytes]:
        found = self._last_modified.get(value)
        if found is None:
            if len(self._last_modified) >= _MAX_REMEMBERED_HEADERS:
                self._last_modified.clear()
            found = self._last_modified[value] = (b"last-modified", value.encode())
            untrack(found)  # shared by blocks, as the lines in __init__ are
        return found

    def _headers(self, entry: CachedResponse, encoding: str) -> tuple[Block, Block]:
        etag = entry.etag if encoding == "identity" else f'{entry.etag[:-1]}-{encoding}"'
        common: Block = ((b"etag", etag.encode()), self._cache_control_header, _VARY)
        body = entry.variant(encoding)
        # The header lines every entry shares are shared objects: an entry's block holds
        # only its own ETag and length (fewer objects per entry, fewer cache lines per hit).
        # Tuples of bytes, not lists: the collector stops tracking them at its next pass,
        # so a held answer's blocks cost later full collections nothing (decision 0029).
        media_type = entry.media_type
        full: Block = (
            _JSON_TYPE
            if media_type == "application/json"
            else (b"content-type", media_type.encode()),
            (b"content-length", b"%d" % len(body)),
            *common,
        )
        if entry.last_modified:
            full += (self._last_modified_line(entry.last_modified),)
        if encoding != "identity":
            full += ((b"content-encoding", encoding.encode()),)
        return full, common

    async def send(
        self,
        send: Send,
        entry: CachedResponse,
        request_headers: list[tuple[bytes, bytes]],
        server_ms: float,
        *,
        head: bool = False,
    ) -> None:
        accept, if_none_match, if_modified_since = request_validators(request_headers)
        encoding = self._choose(accept, len(entry.body) >= self.min_size)
        if encoding is None:
            await _send_plain(send, 406, NOT_ACCEPTABLE_BODY)
            return
        wire = entry.wire.get(encoding)
        if wire is None:
            wire = self._headers(entry, encoding)
            entry.wire = {**entry.wire, encoding: wire}
            # A dict of tuples of bytes, held by its entry alone: out of the collector's
            # view at once, as the entry is in L1. The collector would untrack the tuples
            # itself, but one nesting level per pass of their generation: the outer ones
            # would reach the old generation and wait there for a full collection.
            full, common = wire
            untrack(entry.wire, wire, full, common, *full, *common)
        full, common = wire
        if (
            if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), entry.etag)
        ) or (
            if_none_match is None
            and if_modified_since is not None
            and is_not_modified_since(if_modified_since.decode("latin-1"), entry.last_modified)
        ):
            self.counters.not_modified += 1
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        body = entry.variant(encoding)
        self.counters.bytes_sent += len(body)
        self.counters.bytes_saved += len(entry.body) - len(body)
        timing = (b"server-timing", b"app;dur=%.3f" % server_ms)
        await send({"type": "http.response.start", "status": 200, "headers": [*full, timing]})
        await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
