"""The OpenAPI 3.1 description of the v1 API, served at ``/openapi.json``.

Built from the definitions the server validates with: the bounds and names
in ``search/query.py``, the genres and kinds of the catalog being served
(the engine refuses others), and the body schemas and error codes of
``http/openapi_schemas.py``. ``tests/http`` runs
schemathesis against a live server with this document, so a drift between
the two fails the suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelsearch import __version__
from reelsearch.catalog.documents import MAX_VOTES
from reelsearch.config_checks import MIN_ADMIN_TOKEN_CHARS
from reelsearch.errors import DatabaseUnavailable
from reelsearch.http.middleware.head_limits import MAX_HEADER_BYTES, MAX_TARGET_BYTES
from reelsearch.http.openapi_schemas import (
    BULK_RESULT,
    COMPONENT_SCHEMAS,
    READY,
    SUGGESTIONS,
    WRITE_RESULT,
)
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

# The largest movie id the route reads (18 digits fit a signed 64-bit integer).
MAX_MOVIE_ID = 10**18 - 1
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
# Refused on every path before routing (http/middleware/head_limits.py).
_HEAD_REFUSALS = {
    "414": _error(f"The request target (path and query string) is over {MAX_TARGET_BYTES} "
                  "bytes."),
    "431": _error(f"The request's header names and values are over {MAX_HEADER_BYTES} bytes."),
}  # fmt: skip


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
            "Minimum rating: ASCII decimal notation (`7`, `7.5`, `1e-1`), compared as "
            "written with each rating as shown (`7.05` keeps 7.1, leaves 7.0 out).",
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


_SOURCE_KEY_PARAM = {
    "name": "movie_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,31}:[^\\s/?#]{1,150}$"},
    "description": "SOURCE:SOURCE_ID (imdb:tt0133093): the source is lowercase letters, "
    "digits, `_`, `.`, `-`; the id has no spaces, `/`, `?` or `#`.",
}


def openapi_document(genres: Sequence[str], kinds: Sequence[str]) -> dict[str, Any]:
    """The document for a catalog with these genres and kinds (the values filters accept)."""
    anyone_or_admin: list[dict[str, list[str]]] = [{}, {"adminToken": []}, {"apiKey": []}]
    anyone_or_key: list[dict[str, list[str]]] = [{}, {"apiKey": []}]
    admin_only: list[dict[str, list[str]]] = [{"adminToken": []}]
    document: dict[str, Any] = {
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
                        "200": _ok("Suggestions, best first.", SUGGESTIONS),
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
                        "200": _ok("Replaced, or unchanged (no new version).", WRITE_RESULT),
                        "201": _ok("Added.", WRITE_RESULT),
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
                        "200": _ok("Deleted.", WRITE_RESULT),
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
                        "200": _ok("What each line did, in order.", BULK_RESULT),
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
                        "200": _ok("Ready.", READY),
                        "503": _error("Not ready: the catalog can't be read.", retry_after=True),
                    },
                }
            },
        },
        "components": {
            "schemas": COMPONENT_SCHEMAS,
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
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].update(_HEAD_REFUSALS)
    return document
