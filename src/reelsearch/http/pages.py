"""The web page's routes: search and movie pages rendered on the server, posters, sessions.

A results link opened directly is rendered here from the search engine, so
it works before the script loads and with JavaScript off; the script then
takes over (web/js/). Every HTML response carries the page's security
headers. Session writes are POST/DELETE from the same origin only (Origin,
else Referer, must name this host; SameSite=Lax keeps the cookie off other
sites' requests besides).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import orjson
from anyio.abc import TaskGroup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from reelsearch.config import Settings
from reelsearch.errors import Forbidden, InvalidRequest, NotFound
from reelsearch.http.assets import AssetManifest
from reelsearch.http.page_html import (
    PageState,
    document,
    filters_html,
    hit_html,
    marked,
    mine_html,
    poster_svg,
    poster_url,
    results_html,
    watch_form,
)
from reelsearch.http.params import query_pairs
from reelsearch.http.responses import JSONResponse
from reelsearch.http.session_stores import open_session_store
from reelsearch.http.sessions import (
    Session,
    SessionManager,
    SessionsUnavailable,
    delete_expired_sessions,
)
from reelsearch.search.engine import SearchResult
from reelsearch.search.query import parse_search

PAGE_SIZE = 20
MORE_LIKE_THIS = 6
# The query parameters a results URL may hold; others (tracking tags) are ignored.
PAGE_PARAMS = ("q", "genres", "year_from", "year_to", "min_rating", "sort", "cursor")
# No inline script or style anywhere, so no 'unsafe-inline'; images may come
# from upstream providers' https hosts; the page may not be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    # The page differs per session and per catalog: always revalidate.
    "Cache-Control": "no-cache",
    "Vary": "Cookie",
}
# Posters change only if a title does; a day, then revalidated by ETag.
POSTER_MAX_AGE = 24 * 3600


def _page_state(request: Request) -> tuple[PageState, list[tuple[str, str]]]:
    """The state a results URL holds, and the search parameters it stands for.

    A form sends each checked genre as its own ``genres``; the API wants one
    comma-separated value, so they are joined here.
    """
    values: dict[str, str] = {}
    genres: list[str] = []
    for key, value in query_pairs(request.scope["query_string"]):
        if key == "genres":
            genres += [part.strip() for part in value.split(",") if part.strip()]
        elif key in PAGE_PARAMS and value.strip():
            values.setdefault(key, value.strip() if key != "q" else value)
    state = PageState(
        q=values.get("q", ""),
        genres=tuple(dict.fromkeys(genres)),
        year_from=values.get("year_from", ""),
        year_to=values.get("year_to", ""),
        min_rating=values.get("min_rating", ""),
        sort=values.get("sort", "relevance"),
    )
    pairs = list(values.items())
    if genres:
        pairs.append(("genres", ",".join(state.genres)))
    return state, pairs


def _html(request: Request, body: str, status_code: int = 200) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    response.headers["Link"] = request.app.state.assets.preload_header
    return response


async def home(request: Request) -> Response:
    """/ and /?q=...: the search page, with the first results rendered for a direct link."""
    app_state = request.app.state
    session = await app_state.sessions.load(request)
    state, pairs = _page_state(request)
    result: SearchResult | None = None
    facets: dict[str, dict[str, int]] | None = None
    error = None
    if any(key != "sort" for key, _ in pairs):
        try:
            query = parse_search(
                [*pairs, ("limit", str(PAGE_SIZE)), ("facets", "genres,decade")],
                **app_state.settings.query_limits,
            )
            result = await app_state.engine.search(query)
            facets = dict(result.facets or {})  # a copy: the result may be a cached one
            if state.genres:
                facets["genres"] = await _genre_counts(request, pairs)
        except InvalidRequest as exc:
            error = exc.message
    if state.q.strip() and session.id is not None and result is not None:
        session.add_recent(state.q)  # an existing session only: a GET creates none
    watched = {entry["id"] for entry in session.watchlist}
    main = (
        f'<nav class="side" aria-label="Filters">{filters_html(state, facets)}'
        f'</nav><section id="results" class="results" aria-live="polite">'
        f"{results_html(state, result, watched, error)}</section>"
    )
    title = f"{state.q} – reelsearch" if state.q else "reelsearch – movie search"
    body = document(
        app_state.assets,
        title=title,
        main=main,
        mine=mine_html(session.recent, session.watchlist),
        q=state.q,
        status="searched" if result is not None else "",
    )
    response = _html(request, body, 400 if error else 200)
    await _commit_quietly(request, session, response)
    return response


async def _genre_counts(request: Request, pairs: list[tuple[str, str]]) -> dict[str, int]:
    """Genre counts as if no genre were ticked (disjunctive facets): ticking one genre
    keeps the others on offer with what each would match, not just the ticked one."""
    others = [(key, value) for key, value in pairs if key not in ("genres", "cursor")]
    state = request.app.state
    query = parse_search(
        [*others, ("limit", "1"), ("fields", "id"), ("facets", "genres")],
        **state.settings.query_limits,
    )
    counts = (await state.engine.search(query)).facets
    return dict((counts or {}).get("genres", {}))


async def _commit_quietly(request: Request, session: Session, response: Response) -> None:
    """A page view's session touch is best effort: the page matters more than the list."""
    with suppress(SessionsUnavailable):  # logged by the manager
        await request.app.state.sessions.commit(session, request, response)


def _movie_id(request: Request) -> int:
    raw = request.path_params["movie_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound(f"no movie with id {raw[:20]!r}")
    return int(raw)


async def _more_like_this(request: Request, movie: dict[str, Any]) -> list[dict[str, Any]]:
    """Most-voted movies of the same decade sharing the genres (all of them, else any)."""
    if not movie.get("genres"):
        return []
    pairs = [
        ("genres", ",".join(movie["genres"])),
        ("sort", "-votes"),
        ("limit", str(MORE_LIKE_THIS + 1)),
        ("fields", "id,title,year,rating,votes,genres"),
    ]
    if movie.get("year"):
        decade = movie["year"] // 10 * 10
        pairs += [("year_from", str(decade)), ("year_to", str(decade + 9))]
    found: list[dict[str, Any]] = []
    for mode in ("all", "any"):
        result = await request.app.state.engine.search(
            parse_search([*pairs, ("genres_mode", mode)])
        )
        found = [hit for hit in result.hits if hit["id"] != movie["id"]][:MORE_LIKE_THIS]
        if len(found) >= MORE_LIKE_THIS // 2:
            break
    return found


async def movie_page(request: Request) -> Response:
    """/movie/{id}: one movie, shareable, rendered on the server."""
    app_state = request.app.state
    session = await app_state.sessions.load(request)
    movie_id = _movie_id(request)
    movie = await app_state.engine.get_movie(movie_id)
    mine = mine_html(session.recent, session.watchlist)
    if movie is None:
        main = '<section class="results"><p class="summary error">No such movie.</p></section>'
        return _html(
            request, document(app_state.assets, title="Not found", main=main, mine=mine), 404
        )
    similar = await _more_like_this(request, movie)
    watched = {entry["id"] for entry in session.watchlist}
    facts = [
        f"<dt>{label}</dt><dd>{value}</dd>"
        for label, value in (
            ("Year", movie.get("year")),
            ("Rating", movie.get("rating")),
            ("Votes", f"{movie['votes']:,}" if movie.get("votes") else None),
            ("Runtime", f"{movie['runtime_min']} min" if movie.get("runtime_min") else None),
            ("Genres", ", ".join(movie.get("genres") or []) or None),
            ("Kind", movie.get("kind")),
        )
        if value is not None
    ]
    back = f"/movie/{movie_id}"
    main = (
        f'<article class="movie" data-id="{movie_id}">'
        f'<img class="poster-large" src="{poster_url(movie)}" alt="" width="160" height="240">'
        f'<div><h1>{marked(movie["title"], None)}</h1><dl class="facts">{"".join(facts)}</dl>'
        f"{watch_form(movie_id, movie_id in watched, back)}</div></article>"
        '<section class="similar"><h2>More like this</h2><ol id="hits">'
        f"{''.join(hit_html(hit, watched, back) for hit in similar)}</ol></section>"
    )
    body = document(app_state.assets, title=f"{movie['title']} – reelsearch", main=main, mine=mine)
    response = _html(request, body)
    await _commit_quietly(request, session, response)
    return response


async def poster(request: Request) -> Response:
    """/poster/{id}.svg: the generated placeholder poster, cacheable with an ETag."""
    movie_id = _movie_id(request)
    movie = await request.app.state.engine.get_movie(movie_id)
    if movie is None:
        raise NotFound(f"no movie with id {movie_id}")
    svg = poster_svg(movie_id, movie["title"]).encode()
    etag = f'"{zlib.crc32(svg):08x}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={POSTER_MAX_AGE}",
               "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'"}  # fmt: skip
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(svg, media_type="image/svg+xml", headers=headers)


def _require_same_origin(request: Request) -> None:
    """Refuse a session write another site's page could have sent (CSRF)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host", "")
    if not source or urlsplit(source).netloc != host:
        raise Forbidden("session writes are accepted from this site's own pages only")


async def _form_or_json(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > 4096:
        raise InvalidRequest("request body too large", code="too_long")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            raise InvalidRequest("body is not valid JSON", code="bad_json") from None
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def _reply(request: Request, session: Session, form: dict[str, str]) -> Response:
    """JSON for the script; a redirect back for a plain form post (no JavaScript)."""
    response: Response
    if "next" in form:
        target = form["next"] if form["next"].startswith("/") and not form["next"].startswith(
            "//") else "/"  # fmt: skip
        response = RedirectResponse(target, status_code=303)
    else:
        response = JSONResponse({"recent": session.recent, "watchlist": session.watchlist})
    await request.app.state.sessions.commit(session, request, response)
    return response


async def watchlist_write(request: Request) -> Response:
    """POST adds (or removes, with remove=1 from a form); DELETE removes."""
    _require_same_origin(request)
    form = await _form_or_json(request)
    movie_id = _movie_id(request)
    session = await request.app.state.sessions.load(request)
    if request.method == "DELETE" or form.get("remove") == "1":
        session.remove_watch(movie_id)
    else:
        movie = await request.app.state.engine.get_movie(movie_id)
        if movie is None:
            raise NotFound(f"no movie with id {movie_id}")
        session.add_watch(movie)
    return await _reply(request, session, form)


async def recent_write(request: Request) -> Response:
    """POST {"q": "..."}: the script records a search a person ran."""
    _require_same_origin(request)
    form = await _form_or_json(request)
    session = await request.app.state.sessions.load(request)
    session.add_recent(form.get("q", "")[: request.app.state.settings.max_query_chars])
    return await _reply(request, session, form)


PAGE_ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/movie/{movie_id}", movie_page, methods=["GET"]),
    Route("/poster/{movie_id}.svg", poster, methods=["GET"]),
    Route("/session/watchlist/{movie_id}", watchlist_write, methods=["POST", "DELETE"]),
    Route("/session/recent", recent_write, methods=["POST"]),
]


@asynccontextmanager
async def open_page_services(
    app: Starlette, settings: Settings, tasks: TaskGroup
) -> AsyncIterator[None]:
    """Session store and manager, asset manifest and session cleanup, for the lifespan."""
    store = open_session_store(settings)
    cleanup_stopped: anyio.Event | None = None
    try:
        app.state.sessions = await SessionManager.open(
            store, max_age=settings.session_max_age, secure=settings.session_cookie_secure
        )
        app.state.assets = AssetManifest.load()
        cleanup_stopped = anyio.Event()

        async def cleanup() -> None:
            try:
                await delete_expired_sessions(store, settings.session_cleanup_seconds)
            finally:
                cleanup_stopped.set()

        tasks.start_soon(cleanup)
        yield
    finally:
        # The store closes only after the cleanup task has stopped using it: a round cut off
        # mid-statement by a closed store would log a spurious error at every shutdown.
        tasks.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            # Bounded: a task cancelled before its first step never reaches its finally.
            with anyio.move_on_after(2.0):
                if cleanup_stopped is not None:
                    await cleanup_stopped.wait()
            await store.close()
