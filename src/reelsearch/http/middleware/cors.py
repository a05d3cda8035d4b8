"""Cross-origin access (CORS) for the origins an operator allows, and none by default."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from reelsearch.config import Settings
from reelsearch.http.responses import error_response

# Browsers may cache a preflight answer this long (seconds): one preflight per
# page session instead of one per search typed.
PREFLIGHT_MAX_AGE = 600


def allowed_origins(settings: Settings) -> list[str]:
    """``REELSEARCH_CORS_ORIGINS`` as a list: "https://a.example, https://b.example"."""
    return [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]


class JSONErrorCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as our JSON error body."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = error_response(400, "cors_refused", bytes(response.body).decode())
        for name, value in response.headers.items():
            if name not in ("content-type", "content-length"):
                refused.headers[name] = value
        return refused


def cors_middleware(settings: Settings) -> list[Middleware]:
    """Starlette's CORSMiddleware for the allowed origins, or nothing when none are.

    Reads (GET) and the admin writes are allowed with the Authorization
    header; credentials (cookies) are not, so "*" stays safe to configure.
    """
    origins = allowed_origins(settings)
    if not origins:
        return []
    return [
        Middleware(
            JSONErrorCORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "Retry-After"],
            allow_credentials=False,
            max_age=PREFLIGHT_MAX_AGE,
        )
    ]
