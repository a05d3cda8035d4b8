"""The page's static files: built names from the manifest, served by ServeStatic.

The files in ``static/`` are built from ``web/`` by ``build_assets`` and
committed (installing the package needs no Node and no network). ServeStatic
reads the directory once at startup and precomputes each file's headers,
ETag, Last-Modified and its .zstd/.br/.gz variants, so a request is a dict
lookup; names carrying a 12-hex content hash get ``Cache-Control: public,
max-age=31536000, immutable`` (a new build means a new name).
"""

from __future__ import annotations

from pathlib import Path
from wsgiref.headers import Headers

import orjson
from servestatic import ServeStaticASGI
from starlette.exceptions import HTTPException
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
MANIFEST_NAME = "manifest.json"
URL_PREFIX = "/static/"
# A year, as the issue and RFC 9111 practice ask of versioned files; the
# "immutable" directive keeps browsers from even revalidating on reload.
IMMUTABLE_MAX_AGE = 365 * 24 * 3600
# Unhashed files (the manifest) are revalidated after a minute with their ETag.
MUTABLE_MAX_AGE = 60


class AssetManifest:
    """Logical names (``app.js``) to their built, hashed URLs (``/static/app.1a2b….js``)."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self._urls = {name: URL_PREFIX + built for name, built in mapping.items()}
        # What the first render needs, as a Link header: a proxy or CDN can turn it
        # into a 103 Early Hints, and the browser fetches both before parsing <head>.
        self.preload_header = (
            f"<{self.url('app.css')}>; rel=preload; as=style, "
            f"<{self.url('app.js')}>; rel=modulepreload"
        )

    @classmethod
    def load(cls, directory: Path = STATIC_DIR) -> AssetManifest:
        return cls(orjson.loads((directory / MANIFEST_NAME).read_bytes()))

    def url(self, name: str) -> str:
        return self._urls[name]


def _year_not_ten(headers: Headers, path: str, url: str) -> None:
    """ServeStatic's immutable files get ten years; the issue's policy says one."""
    if "immutable" in headers.get("Cache-Control", ""):
        headers["Cache-Control"] = f"public, max-age={IMMUTABLE_MAX_AGE}, immutable"


async def _no_such_asset(scope: Scope, receive: Receive, send: Send) -> None:
    """What ServeStatic hands a path it has no file for: the app's own 404.

    Without it ServeStatic answers a text/plain "Not Found"; raised here, the
    app's exception handler answers it as every other unknown path, with the
    API's JSON error body.
    """
    raise HTTPException(404)


class _StaticFilesWithAppErrors:
    """ServeStatic's answers, but the app's own 405 where ServeStatic would send its bare one.

    ServeStatic answers a method other than GET and HEAD on one of its files with a
    405 whose body is empty (no JSON, only Allow). It has no hook for that as it
    has for a path it lacks (``_no_such_asset``), so its answer is watched: its 405
    is not passed on, and an ``HTTPException`` with its Allow header is raised for
    the app's exception handler to answer as on an API route. GET and HEAD, the
    methods ServeStatic serves, go to it untouched (its headers, variants, 304s).
    """

    def __init__(self, static_files: ASGIApp) -> None:
        self.static_files = static_files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.static_files(scope, receive, send)
            return
        allow: str | None = None

        async def send_unless_not_allowed(message: Message) -> None:
            nonlocal allow
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = dict(message["headers"]).get(b"allow", b"").decode("latin-1")
            elif allow is None:
                await send(message)

        await self.static_files(scope, receive, send_unless_not_allowed)
        if allow is not None:  # nothing was sent: the app's handler answers
            raise HTTPException(405, headers={"Allow": allow})


def static_files_app(directory: Path = STATIC_DIR) -> ASGIApp:
    """An ASGI app serving ``directory`` at /static/ (the app's JSON 404 for anything else,
    its JSON 405 for a method other than GET and HEAD on a file)."""
    static_files = ServeStaticASGI(
        _no_such_asset,
        root=directory,
        prefix=URL_PREFIX,
        max_age=MUTABLE_MAX_AGE,
        add_headers_function=_year_not_ten,
    )
    return _StaticFilesWithAppErrors(static_files)


def static_mount(directory: Path = STATIC_DIR) -> Mount:
    return Mount(URL_PREFIX.rstrip("/"), app=static_files_app(directory), name="static")
