"""Movie documents: what the documents API and ``import jsonl`` accept, checked field by field.

A document is one movie as JSON, keyed by where it came from::

    {"title": "The Matrix", "year": 1999, "runtime_min": 136, "rating": 8.7,
     "votes": 2000000, "genres": ["Action", "Sci-Fi"], "kind": "movie",
     "alt_titles": ["Matrix"]}

``PUT /v1/movies/{source}:{source_id}`` sends it alone (the key is in the
path); a line of ``POST /v1/movies/bulk`` or of a JSON-lines file carries
``"source"`` and ``"source_id"`` too, and ``"op": "delete"`` deletes instead.
Only ``title`` is required. Every refusal is a :class:`InvalidDocument`
naming the field (and the line), never a guess: an unknown field, a wrong
type or a value out of range is an error, not something dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from reelsearch.catalog.records import MAX_GENRES, MovieRecord
from reelsearch.errors import InvalidRequest

MIN_YEAR, MAX_YEAR = 1800, 2200
MAX_RUNTIME_MIN = 100_000  # longer than any film ever listed (the longest runs ~ 87 days)
MAX_VOTES = 2**31 - 1  # the votes column is a 32-bit integer on PostgreSQL
MAX_TITLE_CHARS = 1_000
MAX_ALT_TITLES = 200  # the index keeps 32 distinct ones (catalog/titles.py); more is a mistake
MAX_GENRE_CHARS = 64
MAX_KEY_CHARS = 200  # as the GET route's limit on SOURCE:ID
# Sources are short lowercase names (imdb, movielens); ids any printable text without spaces.
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_SOURCE_ID = re.compile(r"^[^\s/?#\x00-\x1f\x7f]{1,150}$")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

MOVIE_FIELDS = frozenset(
    {"title", "original_title", "year", "runtime_min", "rating", "votes", "genres", "kind",
     "alt_titles"}
)  # fmt: skip
LINE_FIELDS = MOVIE_FIELDS | {"source", "source_id", "op"}


class InvalidDocument(InvalidRequest):
    """A movie document (or bulk line) that is refused: ``param`` names the field."""

    def __init__(self, message: str, *, param: str | None, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(where + message, param=param, code="invalid_document")
        self.line = line


@dataclass(frozen=True, slots=True)
class PutMovie:
    """Add or replace the movie ``record.source_key`` with ``record``."""

    record: MovieRecord

    @property
    def source_key(self) -> str:
        return self.record.source_key


@dataclass(frozen=True, slots=True)
class DeleteMovie:
    """Remove the movie ``source_key`` (nothing happens if there is none)."""

    source_key: str


Operation = PutMovie | DeleteMovie


def source_key(source: str, source_id: str, *, line: int | None = None) -> str:
    """``"imdb:tt0133093"`` from its parts, each checked."""
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise InvalidDocument(
            "source must be 1-32 characters: lowercase letters, digits, '_', '.', '-' "
            "(like imdb, movielens)",
            param="source",
            line=line,
        )
    if not isinstance(source_id, str) or not _SOURCE_ID.match(source_id):
        raise InvalidDocument(
            "source_id must be 1-150 printable characters without spaces, '/', '?' or '#'",
            param="source_id",
            line=line,
        )
    return f"{source}:{source_id}"


def split_source_key(raw: str) -> str:
    """The path's ``SOURCE:ID``, checked (a 400 naming ``id`` when malformed)."""
    source, colon, source_id = raw.partition(":")
    if not colon or len(raw) > MAX_KEY_CHARS:
        raise InvalidDocument(
            f"a source id is SOURCE:ID, like imdb:tt0133093, not {raw[:40]!r}", param="id"
        )
    return source_key(source, source_id)


def parse_document(body: bytes) -> Mapping[str, Any]:
    """A request body as a JSON object (``bad_json`` / ``invalid_document`` otherwise)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", code="bad_json") from None
    if not isinstance(document, dict):
        raise InvalidDocument("the body must be a JSON object (one movie)", param=None)
    return document


def movie_record(key: str, document: Mapping[str, Any], *, line: int | None = None) -> MovieRecord:
    """The movie a document describes, every field checked."""
    fields = LINE_FIELDS if line is not None else MOVIE_FIELDS
    for name in document:
        if name not in fields:
            raise InvalidDocument(
                f"unknown field {name[:40]!r}; a movie has {', '.join(sorted(fields))}",
                param=name[:40],
                line=line,
            )

    def fail(name: str, why: str) -> InvalidDocument:
        return InvalidDocument(f"{name} {why}", param=name, line=line)

    if "title" not in document:
        raise fail("title", "is required")
    title = _text(document["title"], "title", fail)
    original = document.get("original_title")
    if original is not None:
        original = _text(original, "original_title", fail)
    year = _integer(document.get("year"), "year", MIN_YEAR, MAX_YEAR, fail)
    runtime = _integer(document.get("runtime_min"), "runtime_min", 0, MAX_RUNTIME_MIN, fail)
    votes = _integer(document.get("votes", 0), "votes", 0, MAX_VOTES, fail)
    if votes is None:
        raise fail("votes", "must be a whole number from 0, not null")
    rating = document.get("rating")
    if rating is not None:
        if isinstance(rating, bool) or not isinstance(rating, int | float):
            raise fail("rating", "must be a number from 0 to 10 or null")
        if not (math.isfinite(rating) and 0 <= rating <= 10):
            raise fail("rating", f"must be from 0 to 10, not {rating}")
        rating = float(rating)
    kind = document.get("kind", "movie")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise fail("kind", "must be a word of letters, digits, '_' or '-' (like movie, tvSeries)")
    genres = _string_list(document.get("genres", []), "genres", MAX_GENRES, fail)
    for genre in genres:
        if len(genre) > MAX_GENRE_CHARS or "," in genre or _CONTROL.search(genre):
            raise fail("genres", f"has {genre[:40]!r}: at most {MAX_GENRE_CHARS} characters, "
                       "no commas or control characters")  # fmt: skip
    alt_titles = _string_list(document.get("alt_titles", []), "alt_titles", MAX_ALT_TITLES, fail)
    for alt in alt_titles:
        _text(alt, "alt_titles", fail)
    return MovieRecord(
        source_key=key,
        title=title,
        year=year,
        runtime_min=runtime,
        rating=rating,
        votes=votes,
        genres=tuple(dict.fromkeys(genres)),
        kind=kind,
        original_title=original,
        alt_titles=tuple(dict.fromkeys(alt_titles)),
    )


def operation_of_line(document: Any, line: int) -> Operation:
    """One line of a bulk request or JSON-lines file: a put (default) or a delete."""
    if not isinstance(document, dict):
        raise InvalidDocument("each line must be a JSON object (one movie)", param=None, line=line)
    for name in ("source", "source_id"):
        if name not in document:
            raise InvalidDocument(f"{name} is required on each line", param=name, line=line)
    key = source_key(document["source"], document["source_id"], line=line)
    op = document.get("op", "put")
    if op == "delete":
        extra = sorted(set(document) - {"source", "source_id", "op"})
        if extra:
            raise InvalidDocument(f"a delete has only source and source_id, not {extra[0]!r}",
                                  param=extra[0][:40], line=line)  # fmt: skip
        return DeleteMovie(key)
    if op != "put":
        raise InvalidDocument('op must be "put" (the default) or "delete"', param="op", line=line)
    movie = {k: v for k, v in document.items() if k not in ("source", "source_id", "op")}
    return PutMovie(movie_record(key, movie, line=line))


def _text(value: Any, name: str, fail: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(name, "must be a non-empty string")
    if len(value) > MAX_TITLE_CHARS:
        raise fail(name, f"is {len(value)} characters; at most {MAX_TITLE_CHARS}")
    if _CONTROL.search(value):
        raise fail(name, "must not hold control characters or line breaks")
    return value.strip()


def _integer(value: Any, name: str, low: int, high: int, fail: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(name, f"must be a whole number from {low} to {high} or null")
    if not low <= value <= high:
        raise fail(name, f"must be from {low} to {high}, not {value}")
    return value


def _string_list(value: Any, name: str, most: int, fail: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise fail(name, "must be a list of strings")
    if len(value) > most:
        raise fail(name, f"has {len(value)} entries; at most {most}")
    items = [item.strip() for item in value]
    if not all(items):
        raise fail(name, "must not hold empty strings")
    return items


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one operation did: created, updated, unchanged, deleted or not_found."""

    source_key: str
    result: str
    movie_id: int | None

    def as_json(self) -> dict[str, Any]:
        source, _, source_id = self.source_key.partition(":")
        return {"source": source, "source_id": source_id, "id": self.movie_id,
                "result": self.result}  # fmt: skip


@dataclass(slots=True)
class WriteReport:
    """The outcome of each operation, in order, and the version the write committed."""

    outcomes: list[Outcome]
    catalog_version: int | None = None  # None: nothing changed, the version stayed


def check_distinct(operations: list[Operation], lines: list[int]) -> None:
    """Refuse a batch naming one movie twice: which line wins would be a guess."""
    seen: dict[str, int] = {}
    for operation, line in zip(operations, lines, strict=True):
        earlier = seen.setdefault(operation.source_key, line)
        if earlier != line:
            raise InvalidDocument(
                f"{operation.source_key} is also on line {earlier}; send each movie once",
                param="source_id",
                line=line,
            )
