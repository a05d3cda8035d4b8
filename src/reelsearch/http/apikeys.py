"""API keys (stored hashed, with actions) and scoped search tokens signed from a key.

A key is ``rsk_`` + 32 random bytes (URL-safe base64). The server keeps only
its SHA-256 (``REELSEARCH_API_KEYS`` = ``id:sha256hex:search+admin,...``): a
key has 256 bits of entropy, so a fast hash is enough and a leaked setting
does not reveal a key.

A scoped token (Typesense's scoped keys, Meilisearch's tenant tokens) is made
by a key holder without asking the server: ``rst_`` + base64url(JSON payload)
+ ``.`` + base64url(HMAC-SHA256(sha256(key), payload)). The payload names the
key (``k``), fixed search filters (``f``), a result cap (``cap``) and an
expiry (``exp``, Unix seconds). The server checks it with what it already
holds (the key's hash): no database call. Whoever holds the setting's hashes
could sign tokens, as whoever holds a Typesense parent key can.

    python -m reelsearch.keytool new web --actions search
    python -m reelsearch.keytool scoped rsk_... --key-id web --filter genres=Drama --cap 50
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from reelsearch.errors import ConfigError

KEY_PREFIX = "rsk_"
TOKEN_PREFIX = "rst_"
ACTIONS = frozenset({"search", "admin"})
# The parameters a token may fix: filters only (q, pages and fields stay the client's).
FIXABLE = frozenset({"year_from", "year_to", "genres", "genres_mode", "min_rating",
                     "min_votes", "kind"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: its id, the SHA-256 of its secret, what it may do."""

    id: str
    digest: bytes
    actions: frozenset[str]


@dataclass(frozen=True, slots=True)
class Scope:
    """A checked scoped token: its key, fixed filters, result cap and expiry."""

    key: ApiKey
    filters: dict[str, str]
    cap: int
    expires: int


class TokenRefused(Exception):
    """A presented key or token is unknown, forged, tampered with or expired."""


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_keys(spec: str) -> dict[bytes, ApiKey]:
    """``id:sha256hex:search+admin,...`` -> keys by digest; a bad entry is a ConfigError."""
    keys: dict[bytes, ApiKey] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        try:
            key_id, hex_digest, actions = entry.split(":")
            digest = bytes.fromhex(hex_digest)
        except ValueError:
            raise ConfigError(
                f"Config 'REELSEARCH_API_KEYS' entry {entry[:30]!r} is not id:sha256hex:actions."
            ) from None
        chosen = frozenset(actions.split("+"))
        if len(digest) != 32 or not key_id or not chosen <= ACTIONS:
            raise ConfigError(
                f"Config 'REELSEARCH_API_KEYS' entry for {key_id!r}: a 64-hex-digit SHA-256 "
                f"and actions from {'+'.join(sorted(ACTIONS))} are needed."
            )
        keys[digest] = ApiKey(key_id, digest, chosen)
    return keys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_scoped_token(
    key: str, key_id: str, filters: dict[str, str], cap: int, ttl_seconds: int
) -> str:
    """A token for searches within ``filters``, at most ``cap`` hits deep, for ``ttl_seconds``."""
    unknown = set(filters) - FIXABLE
    if unknown:
        raise ValueError(f"a token can fix only {', '.join(sorted(FIXABLE))}, not {unknown}")
    payload = orjson.dumps({"k": key_id, "f": filters, "cap": cap,
                            "exp": int(time.time()) + ttl_seconds})  # fmt: skip
    signature = hmac.new(hash_key(key), payload, hashlib.sha256).digest()
    return f"{TOKEN_PREFIX}{_b64(payload)}.{_b64(signature)}"


def check_scoped_token(token: str, keys: dict[bytes, ApiKey], now: float) -> Scope:
    """The token's scope, or ``TokenRefused`` saying why."""
    try:
        body, _, signature = token[len(TOKEN_PREFIX) :].partition(".")
        payload, given = _unb64(body), _unb64(signature)
        data: dict[str, Any] = orjson.loads(payload)
        key_id, filters, cap, expires = data["k"], data["f"], int(data["cap"]), int(data["exp"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise TokenRefused("the scoped token is malformed") from None
    key = next((k for k in keys.values() if k.id == key_id), None)
    if key is None:
        raise TokenRefused("the scoped token's key is not configured")
    expected = hmac.new(key.digest, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise TokenRefused("the scoped token's signature does not match")
    if now >= expires:
        raise TokenRefused("the scoped token has expired")
    if not isinstance(filters, dict) or not set(filters) <= FIXABLE or cap < 1:
        raise TokenRefused("the scoped token's filters or cap are invalid")
    return Scope(key, {str(k): str(v) for k, v in filters.items()}, cap, expires)
