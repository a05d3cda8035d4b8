"""Server-side sessions for the web page: a signed random id in a cookie, data in a store.

Only the page's own routes touch sessions, and only a write creates one: the
API, crawlers and anyone who never saves a search or a watchlist entry get
no cookie. The cookie holds ``<id>.<HMAC-SHA256 of id>`` (a forged or
guessed id is refused before the store is asked); the data (recent
searches, watchlist) stays on the server, capped in size and compressed
when large. Why not starsessions: docs/decisions/0009-web-page-and-sessions.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response

from reelsearch.errors import InvalidRequest
from reelsearch.http.session_stores import SessionStore

logger = logging.getLogger("reelsearch.http.sessions")

COOKIE_NAME = "rs_session"
# What a session may hold: the page shows this many, and the caps keep one
# session's bytes bounded whatever a client sends.
MAX_RECENT = 10
MAX_WATCHLIST = 100
MAX_TITLE_CHARS = 200
# Serialized sessions above this are refused (the caps above stay well under it).
MAX_SESSION_BYTES = 64 * 1024
# Values larger than this are stored zlib-compressed: a full watchlist shrinks
# about 4x, while tiny sessions would only grow.
COMPRESS_ABOVE_BYTES = 512
_PLAIN, _ZLIB = b"j", b"z"


class SessionTooLarge(InvalidRequest):
    """A session grew past MAX_SESSION_BYTES (the caps below keep real ones far under)."""

    status_code = 413

    def __init__(self, message: str) -> None:
        super().__init__(message, code="too_large")


@dataclass(slots=True)
class Session:
    """One browser's saved state; ``id`` is None until the first write stores it."""

    id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    is_modified: bool = False
    # Set when the id changed (rotation): the old record is deleted on commit.
    replaced_id: str | None = None

    @property
    def recent(self) -> list[str]:
        return list(self.data.get("recent", []))

    @property
    def watchlist(self) -> list[dict[str, Any]]:
        return list(self.data.get("watchlist", []))

    def add_recent(self, text: str) -> None:
        """Put ``text`` first in the recent searches, once, keeping MAX_RECENT."""
        text = text.strip()[:MAX_TITLE_CHARS]
        if not text:
            return
        recent = [text, *(old for old in self.recent if old != text)][:MAX_RECENT]
        if recent != self.recent:
            self.data["recent"] = recent
            self.is_modified = True

    def add_watch(self, movie: dict[str, Any]) -> None:
        """Add a movie (id, title, year) first in the watchlist, keeping MAX_WATCHLIST."""
        entry = {
            "id": int(movie["id"]),
            "title": str(movie.get("title", ""))[:MAX_TITLE_CHARS],
            "year": movie.get("year"),
        }
        rest = [old for old in self.watchlist if old["id"] != entry["id"]]
        self.data["watchlist"] = [entry, *rest][:MAX_WATCHLIST]
        self.is_modified = True

    def remove_watch(self, movie_id: int) -> None:
        kept = [old for old in self.watchlist if old["id"] != movie_id]
        if len(kept) != len(self.watchlist):
            self.data["watchlist"] = kept
            self.is_modified = True

    def is_watched(self, movie_id: int) -> bool:
        return any(entry["id"] == movie_id for entry in self.watchlist)


def encode_session(data: dict[str, Any]) -> bytes:
    """Serialize, refuse past the cap, compress when it pays."""
    raw = orjson.dumps(data)
    if len(raw) > MAX_SESSION_BYTES:
        raise SessionTooLarge(f"session is {len(raw)} bytes; the cap is {MAX_SESSION_BYTES}")
    if len(raw) > COMPRESS_ABOVE_BYTES:
        return _ZLIB + zlib.compress(raw, 6)
    return _PLAIN + raw


def decode_session(stored: bytes) -> dict[str, Any]:
    kind, body = stored[:1], stored[1:]
    raw = zlib.decompress(body) if kind == _ZLIB else body
    data = orjson.loads(raw)
    return data if isinstance(data, dict) else {}


class SessionsUnavailable(InvalidRequest):
    """The session store cannot be reached: pages render without the session, writes fail."""

    status_code = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unavailable")


class SessionManager:
    """Loads, saves and rotates sessions; one per app, built in the lifespan.

    A store that is down (Redis restarting) costs the visitor their lists for
    the moment, never the page: reads fall back to an empty session, and
    only an explicit save fails (503).
    """

    def __init__(self, store: SessionStore, *, max_age: float, secure: bool) -> None:
        self.store = store
        self._key: bytes | None = None
        self.max_age = max_age
        self.always_secure = secure

    @classmethod
    async def open(cls, store: SessionStore, *, max_age: float, secure: bool) -> SessionManager:
        """A manager with the signing key read now if the store answers (else on first use)."""
        manager = cls(store, max_age=max_age, secure=secure)
        await manager.has_signing_key()
        return manager

    async def has_signing_key(self) -> bool:
        if self._key is None:
            try:
                self._key = await self.store.signing_key()
            except Exception as exc:  # any store failure: sessions are off for now
                logger.warning("session store unavailable: %s", exc)
                return False
        return True

    def sign(self, session_id: str) -> str:
        assert self._key is not None, "sign() before the signing key was read"
        digest = hmac.new(self._key, session_id.encode(), hashlib.sha256).digest()
        return f"{session_id}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"

    def unsign(self, cookie: str) -> str | None:
        """The id inside a cookie value, or None when its signature does not match."""
        session_id, _, _ = cookie.partition(".")
        if not session_id or not hmac.compare_digest(self.sign(session_id), cookie):
            return None
        return session_id

    async def load(self, request: Request) -> Session:
        """The request's session, or a new empty one (not stored until written)."""
        cookie = request.cookies.get(COOKIE_NAME)
        if not cookie or not await self.has_signing_key():
            return Session()
        session_id = self.unsign(cookie)
        if session_id is None:
            return Session()
        try:
            stored = await self.store.read(session_id, self.max_age)
        except Exception as exc:  # the page still renders, without the lists
            logger.warning("session store unavailable: %s", exc)
            return Session()
        if stored is None:
            return Session()
        try:
            return Session(id=session_id, data=decode_session(stored))
        except (ValueError, zlib.error):
            logger.warning("unreadable session dropped")
            return Session()

    def rotate(self, session: Session) -> None:
        """Give the session a new id (on any change of privilege); the old id stops working."""
        if session.id is not None and session.replaced_id is None:
            session.replaced_id = session.id
        session.id = secrets.token_urlsafe(32)
        session.is_modified = True

    async def commit(self, session: Session, request: Request, response: Response) -> None:
        """Store a modified session; send the cookie of any stored one (sliding its Max-Age).

        A visitor with no stored session and nothing to store gets no cookie.
        """
        if session.is_modified:
            if not await self.has_signing_key():
                raise SessionsUnavailable("sessions are unavailable right now; try again")
            if session.id is None:
                session.id = secrets.token_urlsafe(32)
            data = encode_session(session.data)
            try:
                await self.store.write(session.id, data, self.max_age)
                if session.replaced_id is not None:
                    await self.store.delete(session.replaced_id)
            except Exception as exc:
                logger.warning("session store unavailable: %s", exc)
                raise SessionsUnavailable("sessions are unavailable right now; try again") from exc
            session.replaced_id = None
            session.is_modified = False
        if session.id is None:
            return
        response.set_cookie(
            COOKIE_NAME,
            self.sign(session.id),
            max_age=int(self.max_age),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.always_secure or request.url.scheme == "https",
        )


async def delete_expired_sessions(store: SessionStore, every: float) -> None:
    """The cleanup task: delete expired sessions every ``every`` seconds, forever."""
    while True:
        try:
            removed = await store.delete_expired()
            if removed:
                logger.info("deleted %d expired sessions", removed)
        except Exception:  # keep the task alive; the next round tries again
            logger.exception("could not delete expired sessions")
        await anyio.sleep(every)
