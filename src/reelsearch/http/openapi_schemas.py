"""The JSON Schemas of the v1 API's bodies, and its error codes, for ``/openapi.json``.

``http/openapi.py`` puts them together with the paths and parameters. The bounds
come from the modules that enforce them (catalog/documents.py, catalog/records.py),
so the description cannot drift from what the server accepts.
"""

from __future__ import annotations

from typing import Any

from reelsearch.catalog.documents import MAX_ALT_TITLES as MAX_DOC_ALT_TITLES
from reelsearch.catalog.documents import (
    MAX_GENRE_CHARS,
    MAX_RUNTIME_MIN,
    MAX_TITLE_CHARS,
    MAX_VOTES,
)
from reelsearch.catalog.documents import MAX_YEAR as DOC_MAX_YEAR
from reelsearch.catalog.documents import MIN_YEAR as DOC_MIN_YEAR
from reelsearch.catalog.records import MAX_GENRES

# Every error code a response can carry, with what it means. A test checks
# that each code the source raises is listed here.
ERROR_CODES = {
    "invalid": "a parameter's value is out of its bounds or syntax (`param` names it)",
    "unknown_parameter": "a parameter this endpoint does not have",
    "bad_encoding": "the query string is not valid UTF-8 or has a bad %-escape",
    "too_long": "the query string or q is longer than its limit, or the request target "
    "(path and query string) is over 8 KiB (a 414)",
    "headers_too_large": "the request's header names and values are over 32 KiB in all (a 431)",
    "invalid_api_key": "an unknown API key, or a forged, tampered or expired scoped token",
    "forbidden": "an admin-only feature without the admin token, or outside a key's scope",
    "unauthorized": "an admin-only route (the documents API) without an Authorization header",
    "not_found": "no such movie or path",
    "method_not_allowed": "the path has no such method (the `Allow` header lists them)",
    "unavailable": "the catalog database is down or busy; retry after `Retry-After` seconds",
    "deadline_exceeded": "the search ran past REELSEARCH_SEARCH_DEADLINE_MS and was stopped; "
    "retry after `Retry-After` seconds",
    "client_closed_request": "the client went away while its search ran (499, never read)",
    "not_ready": "the catalog can't be read (readiness probe)",
    "rate_limited": "the client's rate limit is spent; retry after `Retry-After` seconds",
    "http_error": "another HTTP-level refusal",
    "cors_refused": "a CORS preflight from an origin, method or header not allowed",
    "bad_json": "a request body (a session write, a movie document) that is not valid JSON",
    "too_large": "a session would grow past its size cap (the page's watchlist and history), "
    "or a documents request passes its size or line limit",
    "invalid_document": "a movie document or bulk line is refused: `param` names the field "
    "(and `line` the line; `errors` lists every bad line found)",
    "conflict": "the catalog can't take this write as it stands (e.g. a 64th genre)",
    "internal": "a bug; it has been logged",
}

_SPANS = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
    "description": "[start, end) offsets in Unicode code points of the matched words.",
}
_MOVIE_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "title": {"type": "string"},
    "year": {"type": ["integer", "null"]},
    "rating": {"type": ["number", "null"]},
    "votes": {"type": "integer"},
    "genres": {"type": "array", "items": {"type": "string"}},
    "runtime_min": {"type": ["integer", "null"]},
    "kind": {"type": "string"},
    "source": {"type": "string", "description": "Where it came from: imdb, movielens..."},
    "source_id": {"type": "string", "description": "Its id there: tt0133093, 2571..."},
}
_HIT = {
    "type": "object",
    "description": "A movie as a search hit; only the `fields` asked for.",
    "additionalProperties": False,
    "properties": {
        **_MOVIE_PROPERTIES,
        "matched_title": {
            "type": ["string", "null"],
            "description": "The alternate title that matched best; null when it is `title`.",
        },
        "highlights": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {"title": _SPANS, "matched_title": _SPANS},
        },
        "explain": {"type": "object", "description": "Only with explain=true."},
    },
}
_MOVIE = {
    "type": "object",
    "additionalProperties": False,
    "required": [*_MOVIE_PROPERTIES, "original_title", "updated_at", "alt_titles"],
    "properties": {
        **_MOVIE_PROPERTIES,
        "original_title": {"type": ["string", "null"]},
        "updated_at": {
            "type": "string",
            "description": "When the catalog last changed it (ISO 8601).",
        },  # fmt: skip
        "alt_titles": {"type": "array", "items": {"type": "string"}},
    },
}
_NULLABLE_INT = ["integer", "null"]
_MOVIE_DOCUMENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title"],
    "description": "A movie to add or replace (catalog/documents.py). Strings are trimmed; "
    "the alternate titles replace the movie's.",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS},
        "original_title": {"type": ["string", "null"], "maxLength": MAX_TITLE_CHARS},
        "year": {"type": _NULLABLE_INT, "minimum": DOC_MIN_YEAR, "maximum": DOC_MAX_YEAR},
        "runtime_min": {"type": _NULLABLE_INT, "minimum": 0, "maximum": MAX_RUNTIME_MIN},
        "rating": {"type": ["number", "null"], "minimum": 0, "maximum": 10},
        "votes": {"type": "integer", "minimum": 0, "maximum": MAX_VOTES, "default": 0},
        "genres": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_GENRE_CHARS},
            "maxItems": MAX_GENRES,
        },  # fmt: skip
        "kind": {
            "type": "string",
            "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,31}$",
            "default": "movie",
        },  # fmt: skip
        "alt_titles": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS},
            "maxItems": MAX_DOC_ALT_TITLES,
        },  # fmt: skip
    },
}
WRITE_RESULT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "source_id", "id", "result", "catalog_version"],
    "properties": {
        "source": {"type": "string"},
        "source_id": {"type": "string"},
        "id": {"type": _NULLABLE_INT, "description": "The movie's catalog id."},
        "result": {"enum": ["created", "updated", "unchanged", "deleted", "not_found"]},
        "line": {"type": "integer", "description": "Bulk only: the line it answers."},
        "catalog_version": {
            "type": _NULLABLE_INT,
            "description": "The version this write committed; null when nothing changed.",
        },
    },
}
BULK_RESULT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["catalog_version", "changed", "results"],
    "properties": {
        "catalog_version": {"type": _NULLABLE_INT},
        "changed": {"type": "integer", "minimum": 0},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["line", "source", "source_id", "id", "result"],
                "properties": {
                    k: v
                    for k, v in WRITE_RESULT["properties"].items()  # type: ignore[attr-defined]
                    if k != "catalog_version"
                },  # fmt: skip
            },
        },
    },
}
_SEARCH_RESULT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["hits", "total", "total_is_exact", "next_cursor"],
    "properties": {
        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
        "total": {"type": "integer", "minimum": 0},
        "total_is_exact": {"type": "boolean", "description": "false: `total` is a floor."},
        "facets": {
            "type": "object",
            "description": "Only with `facets`: value -> count over all matches.",
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "next_cursor": {"type": ["string", "null"], "description": "null on the last page."},
    },
}
SUGGESTIONS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["suggestions"],
    "properties": {
        "suggestions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "title", "year"],
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string"},
                    "year": {"type": ["integer", "null"]},
                },
            },
        }
    },
}
READY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status"],
    "properties": {
        "status": {"const": "ready"},
        "catalog_version": {"type": "integer", "description": "Admin token or allowed address."},
        "movies": {"type": "integer", "description": "Admin token or allowed address."},
        "dependencies": {
            "type": "object",
            "description": "Admin token or allowed address: catalog, migrations, redis "
            "(when configured), each with its state, whether it is required, and why.",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["state", "required", "reason"],
                "properties": {
                    "state": {"enum": ["up", "down"]},
                    "required": {"type": "boolean"},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}
_ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "message", "param"],
            "properties": {
                "code": {
                    "type": "string",
                    "enum": list(ERROR_CODES),
                    "description": "; ".join(f"`{k}`: {v}" for k, v in ERROR_CODES.items()),
                },
                "message": {"type": "string"},
                "param": {"type": ["string", "null"], "description": "The parameter at fault."},
                "line": {
                    "type": ["integer", "null"],
                    "description": "POST /v1/movies/bulk: the first bad line (1-based).",
                },
                "errors": {
                    "type": "array",
                    "description": "POST /v1/movies/bulk: every bad line found (at most 20).",
                    "items": {
                        "type": "object",
                        "properties": {
                            "line": {"type": ["integer", "null"]},
                            "param": {"type": ["string", "null"]},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


# The schemas the paths refer to by "$ref": "#/components/schemas/<name>".
COMPONENT_SCHEMAS: dict[str, Any] = {
    "Hit": _HIT,
    "Movie": _MOVIE,
    "SearchResult": _SEARCH_RESULT,
    "MovieDocument": _MOVIE_DOCUMENT,
    "Error": _ERROR_SCHEMA,
}
