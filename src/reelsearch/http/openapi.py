"""The OpenAPI 3.1 description of the v1 API, served at ``/openapi.json``.

Built from the definitions the server validates with: the bounds and names
in ``search/query.py``, the genres and kinds of the catalog being served
(the engine refuses others), the error codes below. ``tests/http`` runs
schemathesis against a live server with this document, so a drift between
the two fails the suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelsearch import __version__
from reelsearch.catalog.documents import MAX_ALT_TITLES as MAX_DOC_ALT_TITLES
from reelsearch.catalog.documents import MAX_GENRE_CHARS, MAX_RUNTIME_MIN, MAX_TITLE_CHARS
from reelsearch.catalog.documents import MAX_YEAR as DOC_MAX_YEAR
from reelsearch.catalog.documents import MIN_YEAR as DOC_MIN_YEAR
from reelsearch.catalog.records import MAX_GENRES
from reelsearch.config import MIN_ADMIN_TOKEN_CHARS
from reelsearch.errors import DatabaseUnavailable
from reelsearch.search.query import (
    DEFAULT_LIMIT,
    FACETS,
    HIT_FIELDS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_WORD_BYTES,
    MAX_YEAR,
    MIN_YEAR,
    SORTS,
)

# Every error code a response can carry, with what it means. A test checks
# that each code the source raises is listed here.
ERROR_CODES = {
    "invalid": "a parameter's value is out of its bounds or syntax (`param` names it)",
    "unknown_parameter": "a parameter this endpoint does not have",
    "bad_encoding": "the query string is not valid UTF-8 or has a bad %-escape",
    "too_long": "the query string or q is longer than its limit",
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
# The largest movie id the route reads (18 digits fit a signed 64-bit integer).
MAX_MOVIE_ID = 10**18 - 1
MAX_VOTES = 2**31 - 1
# q: any text but control characters (a tab is allowed).
_Q_PATTERN = "^[^\\u0000-\\u0008\\u000a-\\u001f]*$"
_ASCII_DIGITS = "ASCII digits only (no sign, `_`, spaces or other scripts' digits)."

_JSON = "application/json"
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_SEARCH_RESULT_REF = {"$ref": "#/components/schemas/SearchResult"}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = _ok(description, _ERROR_REF)
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


def _param(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    # allowEmptyValue: `limit=` is accepted, and means the same as no `limit` at all.
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "allowEmptyValue": True, "description": description, **extra}  # fmt: skip


def _csv(values: Sequence[str], description: str, name: str) -> dict[str, Any]:
    """A comma-separated list of known values: OpenAPI's form style without explode."""
    schema = {"type": "array", "items": {"type": "string", "enum": list(values)}}
    return _param(name, schema, description, style="form", explode=False)


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


_UNAVAILABLE = _error("The catalog database is unavailable now.", retry_after=True)
_NO_KEY = _error(
    "The X-API-Key is not valid (or missing, with REELSEARCH_REQUIRE_API_KEY).",
)
_NO_ADMIN = _error(
    "No Authorization header (send the admin token), or an invalid X-API-Key.",
)
_LIMITED = _error(
    "This client's token bucket is empty (only with REELSEARCH_RATE_LIMIT set). Responses "
    "of limited paths carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.",
    retry_after=True,
)
_BAD = _error("A parameter is invalid; `error.param` names it.")


def _search_params(genres: Sequence[str], kinds: Sequence[str]) -> list[dict[str, Any]]:
    year = {"type": "integer", "minimum": MIN_YEAR, "maximum": MAX_YEAR}
    return [
        _q_param(),
        _param("year_from", year, f"Inclusive; not after `year_to`. {_ASCII_DIGITS}"),
        _param("year_to", year, f"Inclusive. {_ASCII_DIGITS}"),
        _csv(genres, "Genres of the catalog (case-insensitive), comma-separated.", "genres"),
        _param(
            "genres_mode",
            {"type": "string", "enum": ["any", "all"], "default": "any"},
            "Match movies with any or all of `genres`.",
        ),  # fmt: skip
        _param(
            "min_rating",
            {"type": "number", "minimum": 0, "maximum": 10},
            "Minimum rating: ASCII decimal notation (`7`, `7.5`, `1e-1`).",
        ),  # fmt: skip
        _param(
            "min_votes",
            {"type": "integer", "minimum": 0, "maximum": MAX_VOTES},
            f"Minimum number of votes. {_ASCII_DIGITS}",
        ),  # fmt: skip
        _param("kind", {"type": "string", "enum": list(kinds)}, "A title kind of the catalog."),
        _param(
            "sort",
            {"type": "string", "enum": list(SORTS), "default": "relevance"},
            "`-` sorts descending.",
        ),  # fmt: skip
        _limit_param("Hits per page."),
        _param(
            "offset",
            {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            f"Hits to skip; not with `cursor`. {_ASCII_DIGITS}",
        ),  # fmt: skip
        _param(
            "cursor",
            {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
            "`next_cursor` of the previous page of the same search; not with `offset`.",
        ),  # fmt: skip
        _csv(HIT_FIELDS, "The hit fields to return (default: all).", "fields"),
        _csv(FACETS, "Facets to count over all matches.", "facets"),
        _param(
            "explain",
            {"type": "string", "enum": ["true", "false"], "default": "false"},
            "Admin only (the `adminToken` scheme): each hit gets `explain`, its rank in "
            "parts (text match tier, typos, exactness, popularity).",
        ),  # fmt: skip
    ]


def _q_param() -> dict[str, Any]:
    return _param(
        "q",
        {"type": "string", "maxLength": 256, "pattern": _Q_PATTERN},
        "The text typed: words in any order, last word a prefix, typos tolerated. "
        '`"a phrase"` matches those words side by side, exactly (no typos); `-word` '
        'or `-"a phrase"` leaves out titles holding it. Alternate titles, synonyms, '
        "split or joined words (spiderman, spider man), numerals (2, ii) and a year "
        "(alien 1979 matches the year field) are understood; stop words are optional. "
        "Refused (400): control characters other than tab, more than the server's "
        "limit of characters (default 256) or words, a word longer than "
        f"{MAX_WORD_BYTES} bytes once normalized, only excluded words. Empty: browse.",
    )


def _limit_param(description: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    return _param("limit", schema, f"{description} {_ASCII_DIGITS}")


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
_WRITE_RESULT = {
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
_BULK_RESULT = {
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
                    for k, v in _WRITE_RESULT["properties"].items()  # type: ignore[attr-defined]
                    if k != "catalog_version"
                },  # fmt: skip
            },
        },
    },
}
_SOURCE_KEY_PARAM = {
    "name": "movie_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,31}:[^\\s/?#]{1,150}$"},
    "description": "SOURCE:SOURCE_ID (imdb:tt0133093): the source is lowercase letters, "
    "digits, `_`, `.`, `-`; the id has no spaces, `/`, `?` or `#`.",
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
_SUGGESTIONS = {
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
_READY = {
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


def openapi_document(genres: Sequence[str], kinds: Sequence[str]) -> dict[str, Any]:
    """The document for a catalog with these genres and kinds (the values filters accept)."""
    anyone_or_admin: list[dict[str, list[str]]] = [{}, {"adminToken": []}, {"apiKey": []}]
    anyone_or_key: list[dict[str, list[str]]] = [{}, {"apiKey": []}]
    admin_only: list[dict[str, list[str]]] = [{"adminToken": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reelsearch",
            "version": __version__,
            "description": "Find movies by title as a person types. Every error is a JSON "
            "`Error` with a 4xx or 5xx status. An empty parameter (`limit=`) counts as "
            "not given.",
        },
        "paths": {
            "/v1/search": {
                "get": {
                    "operationId": "searchMovies",
                    "summary": "Search movies by title, with filters, facets and pages.",
                    "parameters": _search_params(genres, kinds),
                    "security": anyone_or_admin,
                    "responses": {
                        "200": _ok(
                            "A page of hits.", {"$ref": "#/components/schemas/SearchResult"}
                        ),  # fmt: skip
                        "400": _BAD,
                        "403": _error("explain=true without the admin token."),
                        "401": _NO_KEY,
                        "429": _LIMITED,
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/v1/autocomplete": {
                "get": {
                    "operationId": "autocompleteTitles",
                    "security": anyone_or_key,
                    "summary": "Title suggestions for a partly typed query.",
                    "parameters": [_q_param(), _limit_param("Suggestions.")],
                    "responses": {
                        "200": _ok("Suggestions, best first.", _SUGGESTIONS),
                        "400": _BAD,
                        "401": _NO_KEY,
                        "429": _LIMITED,
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/v1/movies/{movie_id}": {
                "get": {
                    "operationId": "getMovie",
                    "security": anyone_or_key,
                    "summary": "One movie, with its original and alternate titles.",
                    "parameters": [
                        {
                            "name": "movie_id",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "oneOf": [
                                    {"type": "integer", "minimum": 0, "maximum": MAX_MOVIE_ID},
                                    {"type": "string", "pattern": "^[^:]+:.+$", "maxLength": 200},
                                ]
                            },
                            "description": f"The movie's id ({_ASCII_DIGITS}), or its "
                            "SOURCE:SOURCE_ID (imdb:tt0133093, movielens:2571).",
                        }
                    ],
                    "responses": {
                        "200": _ok("The movie.", {"$ref": "#/components/schemas/Movie"}),
                        "400": _BAD,
                        "404": _error("No movie has this id or source id."),
                        "401": _NO_KEY,
                        "429": _LIMITED,
                        "503": _UNAVAILABLE,
                    },
                },
                "put": {
                    "operationId": "putMovie",
                    "security": admin_only,
                    "summary": "Add or replace one movie by its source id (idempotent).",
                    "parameters": [_SOURCE_KEY_PARAM],
                    "requestBody": {
                        "required": True,
                        "content": {
                            _JSON: {"schema": {"$ref": "#/components/schemas/MovieDocument"}}
                        },  # fmt: skip
                    },
                    "responses": {
                        "200": _ok("Replaced, or unchanged (no new version).", _WRITE_RESULT),
                        "201": _ok("Added.", _WRITE_RESULT),
                        "400": _error("The document is refused; `error.param` names the field."),
                        "403": _error("A wrong admin token, or none configured on the server."),
                        "401": _NO_ADMIN,
                        "409": _error("The catalog can't take this write."),
                        "413": _error("The body is too large."),
                        "429": _LIMITED,
                        "503": _UNAVAILABLE,
                    },
                },
                "delete": {
                    "operationId": "deleteMovie",
                    "security": admin_only,
                    "summary": "Delete one movie by its source id.",
                    "parameters": [_SOURCE_KEY_PARAM],
                    "responses": {
                        "200": _ok("Deleted.", _WRITE_RESULT),
                        "400": _BAD,
                        "403": _error("A wrong admin token, or none configured on the server."),
                        "404": _error("No movie has this source id."),
                        "401": _NO_ADMIN,
                        "429": _LIMITED,
                        "503": _UNAVAILABLE,
                    },
                },
            },
            "/v1/movies/bulk": {
                "post": {
                    "operationId": "writeMovies",
                    "security": admin_only,
                    "summary": "Add, replace or delete many movies: JSON lines, one transaction.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                        "description": "One JSON object a line: `source`, `source_id` and "
                        'the movie\'s fields (a `MovieDocument`), or `"op": "delete"` '
                        "with `source` and `source_id` only. Each movie at most once; at "
                        "most REELSEARCH_DOCUMENTS_BULK_MAX_LINES lines.",
                    },
                    "responses": {
                        "200": _ok("What each line did, in order.", _BULK_RESULT),
                        "400": _error(
                            "Bad lines: `error.line` and `error.errors` name them; "
                            "nothing was written."
                        ),  # fmt: skip
                        "403": _error("A wrong admin token, or none configured on the server."),
                        "401": _NO_ADMIN,
                        "409": _error("The catalog can't take this write."),
                        "413": _error("Too many lines or bytes."),
                        "429": _LIMITED,
                        "503": _UNAVAILABLE,
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "The process is up.",
                    "responses": {
                        "200": _ok(
                            "ok",
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["status"],
                                "properties": {"status": {"const": "ok"}},
                            },
                        ),  # fmt: skip
                    },
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "The catalog can be read; details for the admin token.",
                    "security": anyone_or_admin,
                    "responses": {
                        "200": _ok("Ready.", _READY),
                        "503": _error("Not ready: the catalog can't be read.", retry_after=True),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Hit": _HIT,
                "Movie": _MOVIE,
                "SearchResult": _SEARCH_RESULT,
                "MovieDocument": _MOVIE_DOCUMENT,
                "Error": _ERROR_SCHEMA,
            },
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {
                        "type": "integer",
                        "minimum": 0,
                        "example": DatabaseUnavailable.retry_after,
                    },  # fmt: skip
                }
            },
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "An API key, or a scoped search token signed with one "
                    "(fixed filters, a result cap, an expiry; /v1/search only).",
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "REELSEARCH_ADMIN_TOKEN (at least "
                    f"{MIN_ADMIN_TOKEN_CHARS} characters); refusals are logged.",
                },
            },
        },
    }
