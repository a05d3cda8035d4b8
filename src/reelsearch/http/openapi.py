"""The OpenAPI 3.1 description of the v1 API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from reelsearch import __version__
from reelsearch.search.query import FACETS, HIT_FIELDS, MAX_LIMIT, MAX_OFFSET, SORTS


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _csv(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "pattern": f"^(({'|'.join(values)}),?)*$"}


_ERROR = {"$ref": "#/components/responses/Error"}
_JSON = "application/json"

_SEARCH_PARAMS = [
    _param(
        "q",
        {"type": "string", "maxLength": 256},
        "The text typed: words in any order, last word a prefix, typos tolerated. "
        '`"a phrase"` matches those words side by side, exactly (no typos); `-word` '
        'or `-"a phrase"` leaves out titles holding it. Alternate titles, synonyms, '
        "split or joined words (spiderman, spider man), numerals (2, ii) and a year "
        "(alien 1979 matches the year field) are understood; stop words are optional.",
    ),
    _param("year_from", {"type": "integer", "minimum": 1800, "maximum": 2200}, "Inclusive."),
    _param("year_to", {"type": "integer", "minimum": 1800, "maximum": 2200}, "Inclusive."),
    _param("genres", {"type": "string"}, "Comma-separated genre names (case-insensitive)."),
    _param(
        "genres_mode",
        {"type": "string", "enum": ["any", "all"], "default": "any"},
        "Match movies with any or all of `genres`.",
    ),
    _param("min_rating", {"type": "number", "minimum": 0, "maximum": 10}, "Minimum rating."),
    _param("min_votes", {"type": "integer", "minimum": 0}, "Minimum number of votes."),
    _param("kind", {"type": "string"}, "Title kind, e.g. movie, short, tvSeries."),
    _param(
        "sort",
        {"type": "string", "enum": list(SORTS), "default": "relevance"},
        "`-` sorts descending.",
    ),
    _param(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
        "Hits per page.",
    ),
    _param(
        "offset",
        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        "Hits to skip; not with `cursor`.",
    ),
    _param("cursor", {"type": "string"}, "`next_cursor` of the previous page."),
    _param("fields", _csv(HIT_FIELDS), "Comma-separated subset of hit fields."),
    _param("facets", _csv(FACETS), "Comma-separated facets to count over all matches."),
    _param(
        "explain",
        {"type": "boolean", "default": False},
        "Admin only (`Authorization: Bearer <admin token>`): each hit gets `explain`, "
        "its rank in parts (text match tier, typos, exactness, popularity).",
    ),
]

_SPANS = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
    "description": "[start, end) offsets in Unicode code points of the matched words.",
}

_HIT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "year": {"type": ["integer", "null"]},
        "rating": {"type": ["number", "null"]},
        "votes": {"type": "integer"},
        "genres": {"type": "array", "items": {"type": "string"}},
        "runtime_min": {"type": ["integer", "null"]},
        "kind": {"type": "string"},
        "matched_title": {
            "type": ["string", "null"],
            "description": "The alternate title that matched best; null when it is `title`.",
        },
        "highlights": {
            "type": ["object", "null"],
            "properties": {"title": _SPANS, "matched_title": _SPANS},
        },
        "explain": {"type": "object", "description": "Only with explain=true."},
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "reelsearch",
        "version": __version__,
        "description": "Find movies by title as a person types.",
    },
    "paths": {
        "/v1/search": {
            "get": {
                "summary": "Search movies by title, with filters, facets and pages.",
                "parameters": _SEARCH_PARAMS,
                "responses": {
                    "200": {
                        "description": "A page of hits.",
                        "content": {
                            _JSON: {"schema": {"$ref": "#/components/schemas/SearchResult"}}
                        },
                    },
                    "400": _ERROR,
                    "403": _ERROR,
                },
            }
        },
        "/v1/autocomplete": {
            "get": {
                "summary": "Title suggestions for a partly typed query.",
                "parameters": [
                    _SEARCH_PARAMS[0],
                    _param(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
                        "Suggestions.",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "Suggestions, best first.",
                        "content": {
                            _JSON: {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "suggestions": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "properties": {
                                                    "id": {"type": "integer"},
                                                    "title": {"type": "string"},
                                                    "year": {"type": ["integer", "null"]},
                                                },
                                            },
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "400": _ERROR,
                },
            }
        },
        "/v1/movies/{movie_id}": {
            "get": {
                "summary": "One movie.",
                "parameters": [
                    {
                        "name": "movie_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    }
                ],
                "responses": {
                    "200": {"description": "The movie.", "content": {_JSON: {"schema": _HIT}}},
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/health": {
            "get": {"summary": "The process is up.", "responses": {"200": {"description": "ok"}}}
        },
        "/ready": {
            "get": {
                "summary": "The catalog can be read.",
                "responses": {"200": {"description": "ready"}, "503": _ERROR},
            }
        },
    },
    "components": {
        "schemas": {
            "Hit": _HIT,
            "SearchResult": {
                "type": "object",
                "required": ["hits", "total", "total_is_exact", "next_cursor"],
                "properties": {
                    "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                    "total": {"type": "integer"},
                    "total_is_exact": {"type": "boolean"},
                    "facets": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                    },
                    "next_cursor": {"type": ["string", "null"]},
                },
            },
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "param": {"type": ["string", "null"]},
                        },
                    }
                },
            },
        },
        "responses": {
            "Error": {
                "description": "What is wrong with the request.",
                "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
    },
}
