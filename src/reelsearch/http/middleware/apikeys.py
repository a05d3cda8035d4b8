"""API keys and scoped search tokens on the v1 API (``X-API-Key`` header).

A key names the client (for rate limits) and must allow the "search" action.
A scoped token narrows /v1/search: its filters replace the client's (a
value the search parser reads as another one than the token's is a 403; one
it refuses is the route's own 400), its cap bounds ``offset + limit``
(``limit`` is lowered to fit; ``cursor`` is refused, as it could page past
the cap). The query string is rewritten before the route parses it, so the
route and the engine see an ordinary, narrower search.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from reelsearch.cache.keys import canonical_query
from reelsearch.errors import InvalidRequest
from reelsearch.http.apikeys import (
    TOKEN_PREFIX,
    ApiKey,
    TokenRefused,
    check_scoped_token,
    hash_key,
)
from reelsearch.http.params import query_pairs
from reelsearch.search.query import DEFAULT_LIMIT, parse_search

# Where the checked client identity is left for the rate limiter.
CLIENT_SCOPE_KEY = "reelsearch.client"


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


class ApiKeyMiddleware:
    """Check ``X-API-Key`` on /v1/ paths; narrow searches made with a scoped token."""

    def __init__(self, app: ASGIApp, *, keys: dict[bytes, ApiKey], require_key: bool) -> None:
        self.app = app
        self.keys = keys
        self.require_key = require_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        presented = dict(scope["headers"]).get(b"x-api-key")
        try:
            if presented is None:
                if self.require_key:
                    raise _Refusal(401, "invalid_api_key", "send an API key in X-API-Key")
            else:
                self._admit(scope, presented.decode("latin-1"))
        except _Refusal as refusal:
            await _send_error(send, refusal)
            return
        await self.app(scope, receive, send)

    def _admit(self, scope: Scope, presented: str) -> None:
        if presented.startswith(TOKEN_PREFIX):
            try:
                token = check_scoped_token(presented, self.keys, time.time())
            except TokenRefused as exc:
                raise _Refusal(401, "invalid_api_key", str(exc)) from None
            key = token.key
            _require_search(key)
            if scope["path"] != "/v1/search":
                raise _Refusal(403, "forbidden", "a scoped token is for /v1/search only")
            scope["query_string"] = _narrowed(scope["query_string"], token.filters, token.cap)
        else:
            found = self.keys.get(hash_key(presented))
            if found is None:
                raise _Refusal(401, "invalid_api_key", "the API key is not valid")
            key = found
            _require_search(key)
        scope[CLIENT_SCOPE_KEY] = f"key:{key.id}"


def _require_search(key: ApiKey) -> None:
    if "search" not in key.actions:
        raise _Refusal(403, "forbidden", f"the API key {key.id!r} may not search")


def _narrowed(query_string: bytes, filters: dict[str, str], cap: int) -> bytes:
    """The client's query string with the token's filters forced and its cap applied."""
    try:
        pairs = query_pairs(query_string)
    except InvalidRequest:
        return query_string  # the route refuses it with the same 400
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        if name in filters:
            if value == "":  # not given (query.py): the token's value is added below
                continue
            try:
                is_other = _is_other_value(name, value, filters[name])
            except InvalidRequest:
                # The route refuses this query string with the 400 it gives without a
                # token: parse_search reads the value as _filter_value just did.
                return query_string
            if is_other:
                raise _Refusal(403, "forbidden",
                               f"{name} is fixed by the scoped token", param=name)  # fmt: skip
            continue
        if name == "cursor" and value:
            why = "a scoped token pages with offset, not cursor"
            raise _Refusal(403, "forbidden", why, param="cursor")
        kept.append((name, value))
    values = dict(kept)
    offset = _number(values.get("offset")) or 0
    limit = _number(values.get("limit")) or DEFAULT_LIMIT
    if offset >= cap:
        why = f"the scoped token shows the first {cap} hits only"
        raise _Refusal(403, "forbidden", why, param="offset")
    if offset + limit > cap:
        kept = [(n, v) for n, v in kept if n != "limit"] + [("limit", str(cap - offset))]
    return urlencode([*kept, *filters.items()]).encode()


def _filter_value(name: str, raw: str) -> object:
    """A filter's value as a search reads it: ``InvalidRequest`` as the route gives it.

    The search parser's own reading (``parse_search``) and the result cache's
    merging of spellings (``canonical_query``: genre names in any case and
    order), so 7, 7.0 and 0.7e1 are one rating bound, 02000 is the year 2000
    and "Drama,horror" the genres "Horror,Drama", exactly when the searches are
    the same; 7.0000000000000001 is not 7 (the parser reads the next double up).
    """
    return getattr(canonical_query(parse_search([(name, raw)])), name)


def _is_other_value(name: str, asked: str, fixed: str) -> bool:
    """Whether a search reads the client's ``asked`` as another value of the filter than
    the token's ``fixed``; ``InvalidRequest`` (the route's 400) if it refuses ``asked``."""
    value = _filter_value(name, asked)
    try:
        return value != _filter_value(name, fixed)
    except InvalidRequest:
        # A fixed value no search takes (a token signed by hand): every search with
        # the token is the route's 400 naming it, so the client's value is dropped.
        return False


def _number(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 10 else None


async def _send_error(send: Send, refusal: _Refusal) -> None:
    body = orjson.dumps({"error": {"code": refusal.code, "message": refusal.message,
                                   "param": refusal.param}})  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b'ApiKey header="X-API-Key"'))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
