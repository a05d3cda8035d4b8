"""ASGI middleware of the HTTP app: security headers and CORS."""

from reelsearch.http.middleware.cors import cors_middleware
from reelsearch.http.middleware.security import SECURITY_HEADERS, SecurityHeadersMiddleware

__all__ = ["SECURITY_HEADERS", "SecurityHeadersMiddleware", "cors_middleware"]
