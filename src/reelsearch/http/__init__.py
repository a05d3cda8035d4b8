"""The HTTP API: app factory, routes, responses."""

from reelsearch.http.app import create_app

__all__ = ["create_app"]
