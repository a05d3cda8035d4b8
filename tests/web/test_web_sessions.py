"""Web sessions: the same contract on the SQLite store and on real Redis (expiry,
sliding, cleanup, signing key), the manager (size cap, compression, rotation, cookie
flags), and the HTTP rules (no cookie for API clients or plain visitors, CSRF).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import orjson
import pytest
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import Response

from reelsearch.config import Settings
from reelsearch.errors import ConfigError
from reelsearch.http import create_app
from reelsearch.http.session_stores import (
    RedisSessionStore,
    SessionStore,
    SQLiteSessionStore,
    default_session_path,
    open_session_store,
)
from reelsearch.http.sessions import (
    COOKIE_NAME,
    MAX_RECENT,
    MAX_WATCHLIST,
    Session,
    SessionManager,
    SessionTooLarge,
    decode_session,
    delete_expired_sessions,
    encode_session,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A fresh, empty session store of each kind."""
    made: SessionStore
    if request.param == "sqlite":
        made = SQLiteSessionStore(tmp_path / "sessions.db")
    else:
        made = RedisSessionStore(request.getfixturevalue("redis_url"))
    yield made
    await made.close()


def _request(cookie: str | None = None, scheme: str = "http") -> Request:
    headers = [(b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"{COOKIE_NAME}={cookie}".encode()))
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers,
             "query_string": b"", "scheme": scheme, "server": ("testserver", 80)}  # fmt: skip
    return Request(scope)


def _cookie_value(response: Response) -> str:
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1].strip('"')


async def test_store_reads_what_was_written_until_it_expires(store: SessionStore) -> None:
    """A session reads back byte for byte, and is gone once its TTL passes unused."""
    await store.write("a", b"j{}", ttl=0.4)
    assert await store.read("a", ttl=0.4) == b"j{}"
    await anyio.sleep(0.6)
    assert await store.read("a", ttl=0.4) is None
    assert await store.read("never", ttl=10) is None


async def test_store_expiry_slides_with_each_read(store: SessionStore) -> None:
    """Reading a session pushes its expiry ahead: one read every 0.3 s outlives its 1 s TTL
    (the slack is for a loaded machine)."""
    await store.write("a", b"jx", ttl=1.0)
    for _ in range(5):
        await anyio.sleep(0.3)
        assert await store.read("a", ttl=1.0) == b"jx"


async def test_store_delete_and_cleanup(store: SessionStore, tmp_path: Path) -> None:
    """delete removes a session; the cleanup task leaves no expired session behind."""
    await store.write("gone", b"j1", ttl=60)
    await store.delete("gone")
    assert await store.read("gone", ttl=60) is None
    await store.write("old", b"j2", ttl=0.1)
    await store.write("live", b"j3", ttl=60)
    await anyio.sleep(0.3)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(delete_expired_sessions, store, 0.05)
        await anyio.sleep(0.2)
        tasks.cancel_scope.cancel()
    assert await store.read("live", ttl=60) == b"j3"
    if isinstance(store, SQLiteSessionStore):  # Redis expires keys itself
        assert await store.count() == 1


async def test_store_signing_key_is_created_once(store: SessionStore) -> None:
    """Every process asking for the signing key gets the same 32 bytes."""
    first = await store.signing_key()
    assert len(first) == 32
    assert first == await store.signing_key()


async def test_sqlite_cleanup_counts_expired_rows(tmp_path: Path) -> None:
    """delete_expired deletes exactly the expired rows and says how many."""
    store = SQLiteSessionStore(tmp_path / "s.db")
    for n in range(3):
        await store.write(f"old{n}", b"j", ttl=0.05)
    await store.write("live", b"j", ttl=60)
    await anyio.sleep(0.1)
    assert await store.delete_expired() == 3
    assert await store.count() == 1
    await store.close()


def test_session_store_is_chosen_by_settings(tmp_path: Path) -> None:
    """Redis when REELSEARCH_REDIS_URL is set; else a SQLite file beside the catalog."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/movies.db")
    assert str(tmp_path / "movies-sessions.db") == default_session_path(settings)
    configured = dataclasses.replace(settings, session_path=str(tmp_path / "x.db"))
    assert str(tmp_path / "x.db") == default_session_path(configured)
    redis_store = open_session_store(dataclasses.replace(settings, redis_url="redis://h:1/5"))
    assert isinstance(redis_store, RedisSessionStore)
    assert Settings.from_env({"REELSEARCH_REDIS_URL": "redis://h/2"}).redis_url == "redis://h/2"
    with pytest.raises(ConfigError, match="REELSEARCH_REDIS_URL' must be redis://"):
        Settings.from_env({"REELSEARCH_REDIS_URL": "127.0.0.1:6379"})
    with pytest.raises(ConfigError, match="REELSEARCH_SESSION_MAX_AGE' must be positive"):
        Settings.from_env({"REELSEARCH_SESSION_MAX_AGE": "0"})


def test_lists_are_capped_and_deduplicated() -> None:
    """Recent searches keep the newest MAX_RECENT once each; the watchlist MAX_WATCHLIST."""
    session = Session()
    for n in range(MAX_RECENT + 5):
        session.add_recent(f"query {n}")
    session.add_recent("query 14")
    assert len(session.recent) == MAX_RECENT
    assert session.recent[0] == "query 14" and session.recent.count("query 14") == 1
    for n in range(MAX_WATCHLIST + 20):
        session.add_watch({"id": n, "title": "x" * 1000, "year": 2000})
    assert len(session.watchlist) == MAX_WATCHLIST
    assert len(session.watchlist[0]["title"]) == 200
    assert [e["id"] for e in session.watchlist[:2]] == [MAX_WATCHLIST + 19, MAX_WATCHLIST + 18]


def test_large_values_are_compressed_and_oversize_refused() -> None:
    """A full session is stored zlib-compressed (much smaller); past the cap it is refused."""
    session = Session()
    for n in range(MAX_WATCHLIST):
        session.add_watch({"id": n, "title": f"The Movie Number {n}", "year": 1990})
    stored = encode_session(session.data)
    assert stored[:1] == b"z"
    assert len(stored) * 3 < len(orjson.dumps(session.data))
    assert session.data == decode_session(stored)
    assert encode_session({"recent": ["a"]}) == b'j{"recent":["a"]}'
    with pytest.raises(SessionTooLarge):
        encode_session({"blob": "x" * 70_000})


async def test_manager_signs_rotates_and_sets_cookie_flags(store: SessionStore) -> None:
    """The cookie is <id>.<signature> (HttpOnly, SameSite=Lax, Secure on https); a forged
    id is ignored; rotation gives a new id, keeps the data and kills the old id."""
    manager = await SessionManager.open(store, max_age=60, secure=False)
    session = await manager.load(_request())
    assert session.id is None
    session.add_recent("alien")
    response = Response()
    await manager.commit(session, _request(scheme="https"), response)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" in header
    assert "max-age=60" in header
    cookie = _cookie_value(response)
    assert manager.unsign(cookie) == session.id
    assert (await manager.load(_request(cookie))).recent == ["alien"]
    forged = session.id + "." + "A" * 43
    assert (await manager.load(_request(forged))).id is None
    old_id = session.id
    manager.rotate(session)
    rotated = Response()
    await manager.commit(session, _request(), rotated)
    assert session.id != old_id
    assert "secure" not in rotated.headers["set-cookie"].lower()
    assert (await manager.load(_request(cookie))).id is None
    assert (await manager.load(_request(_cookie_value(rotated)))).recent == ["alien"]


async def test_unmodified_new_session_sends_no_cookie(store: SessionStore) -> None:
    """A visitor who stores nothing gets no cookie and no stored session."""
    manager = await SessionManager.open(store, max_age=60, secure=True)
    response = Response()
    await manager.commit(await manager.load(_request()), _request(), response)
    assert "set-cookie" not in response.headers


@pytest.fixture(params=STORES)
def session_client(request: pytest.FixtureRequest, web_settings: Settings) -> Iterator[TestClient]:
    """The app on the sample catalog with sessions on each store."""
    settings = web_settings
    if request.param == "redis":
        settings = dataclasses.replace(settings, redis_url=request.getfixturevalue("redis_url"))
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


SAME_ORIGIN = {"Origin": "http://testserver"}


def test_api_clients_and_visitors_get_no_cookie(session_client: TestClient) -> None:
    """The API and the page set no cookie for a visitor who saved nothing."""
    for path in ("/v1/search?q=alien", "/v1/autocomplete?q=ali", "/", "/?q=alien", "/health"):
        response = session_client.get(path)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers, path
    assert not session_client.cookies


def test_watchlist_and_recent_round_trip(session_client: TestClient) -> None:
    """POST adds, DELETE removes; the page renders the lists from the server-side session."""
    movie = session_client.get("/v1/search?q=the+matrix&limit=1").json()["hits"][0]
    added = session_client.post(f"/session/watchlist/{movie['id']}", headers=SAME_ORIGIN, json={})
    assert added.status_code == 200
    assert [{"id": movie["id"], "title": "The Matrix", "year": 1999}] == added.json()["watchlist"]
    assert COOKIE_NAME in session_client.cookies
    recent = session_client.post("/session/recent", headers=SAME_ORIGIN, json={"q": "matirx"})
    assert recent.json()["recent"] == ["matirx"]
    page = session_client.get("/")
    assert f'<li data-id="{movie["id"]}"><a href="/movie/{movie["id"]}">The Matrix</a>' in page.text
    assert '<a href="/?q=matirx">matirx</a>' in page.text
    # An existing session records a results page opened directly.
    session_client.get("/?q=alien")
    assert session_client.post("/session/recent", headers=SAME_ORIGIN, json={"q": ""}).json()[
        "recent"
    ] == ["alien", "matirx"]
    removed = session_client.delete(f"/session/watchlist/{movie['id']}", headers=SAME_ORIGIN)
    assert removed.json()["watchlist"] == []


def test_form_posts_redirect_back(session_client: TestClient) -> None:
    """Without JavaScript, the watchlist form posts and is redirected (303) to its page."""
    response = session_client.post(
        "/session/watchlist/1",
        headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
        content=b"next=%2F%3Fq%3Dx",
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/?q=x"
    offsite = session_client.post(
        "/session/watchlist/1", headers=SAME_ORIGIN, data={"next": "//evil.example/"},
        follow_redirects=False,
    )  # fmt: skip
    assert offsite.headers["location"] == "/"


def test_cross_site_session_writes_are_refused(session_client: TestClient) -> None:
    """A POST or DELETE from another origin, or naming none, is a 403 and changes nothing."""
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "http://evil.example/x"}, {}):
        response = session_client.post("/session/watchlist/1", headers=headers, json={})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        assert session_client.delete("/session/watchlist/1", headers=headers).status_code == 403
    assert not session_client.cookies
    referer = session_client.post(
        "/session/recent", headers={"Referer": "http://testserver/?q=a"}, json={"q": "a"}
    )
    assert referer.status_code == 200
    assert (
        session_client.post(
            "/session/watchlist/999999999", headers=SAME_ORIGIN, json={}
        ).status_code
        == 404
    )


def test_a_dead_session_store_costs_the_lists_not_the_page(web_settings: Settings) -> None:
    """With Redis down (a real dead port) the app starts, pages render without the lists,
    and a save is a clear 503, not a 500."""
    settings = dataclasses.replace(web_settings, redis_url="redis://127.0.0.1:1/5")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        client.cookies.set(COOKIE_NAME, "someid.signature")
        page = client.get("/?q=alien")
        assert page.status_code == 200
        assert "Alien" in page.text
        saved = client.post("/session/recent", headers=SAME_ORIGIN, json={"q": "alien"})
        assert saved.status_code == 503
        assert saved.json()["error"]["code"] == "unavailable"
