"""The documents API: admins add, replace and delete movies by their source id.

- ``PUT /v1/movies/{source}:{source_id}`` with one movie as JSON: 201
  created, or 200 updated / unchanged (the same body twice is one change);
- ``DELETE /v1/movies/{source}:{source_id}``: 200 deleted, or 404;
- ``POST /v1/movies/bulk`` with JSON lines (``source``, ``source_id``, the
  movie's fields, ``"op": "delete"`` to delete): every line is checked
  first and the first bad ones are named by line and field (nothing is
  written then); otherwise all are applied in one transaction and answered
  line by line.

Every route needs the admin token, checked before the body is read: 401 without
an Authorization header, 403 with a wrong token (or none configured).
A write commits a new catalog version with its change records; searches
see it once the catalog poller reloads (``catalog_poll_seconds``).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelsearch.catalog.documents import (
    DeleteMovie,
    InvalidDocument,
    Operation,
    PutMovie,
    WriteReport,
    check_distinct,
    movie_record,
    operation_of_line,
    parse_document,
    split_source_key,
)
from reelsearch.catalog.writes import CatalogWriter
from reelsearch.errors import (
    CatalogError,
    DatabaseUnavailable,
    InvalidRequest,
    NotFound,
    TransactionConflict,
)
from reelsearch.http.admin import admin_refusal
from reelsearch.http.responses import JSONResponse

# One movie is a few hundred bytes; 200 alternate titles of 1,000 characters fit.
MAX_DOCUMENT_BYTES = 256 * 1024
# A bulk body may average this much per line (the line count is a setting).
BULK_BYTES_PER_LINE = 8 * 1024
# Bad lines named in one answer: enough to fix a file's pattern, not a flood.
MAX_LINE_ERRORS = 20


async def write_movie(request: Request) -> Response:
    """PUT or DELETE ``/v1/movies/{source}:{source_id}``."""
    if (refused := admin_refusal(request, "documents", "the documents API")) is not None:
        return refused
    key = split_source_key(request.path_params["movie_id"])
    operation: Operation
    if request.method == "DELETE":
        operation = DeleteMovie(key)
    else:
        document = parse_document(await _body(request, MAX_DOCUMENT_BYTES))
        operation = PutMovie(movie_record(key, document))
    report = await _write(request, [operation])
    outcome = report.outcomes[0]
    if outcome.result == "not_found":
        raise NotFound(f"no movie with source id {key}")
    body = {**outcome.as_json(), "catalog_version": report.catalog_version}
    return JSONResponse(body, status_code=201 if outcome.result == "created" else 200)


async def bulk(request: Request) -> Response:
    """POST ``/v1/movies/bulk``: JSON lines, answered line by line."""
    if (refused := admin_refusal(request, "documents", "the documents API")) is not None:
        return refused
    most = request.app.state.settings.documents_bulk_max_lines
    body = await _body(request, most * BULK_BYTES_PER_LINE)
    operations: list[Operation] = []
    lines: list[int] = []
    errors: list[InvalidDocument] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        if len(lines) + len(errors) == most:
            raise _too_large(f"more than {most} lines; send at most {most} per request "
                             "(REELSEARCH_DOCUMENTS_BULK_MAX_LINES)")  # fmt: skip
        try:
            try:
                document = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidDocument(f"not valid JSON: {exc}", param=None, line=number) from None
            operations.append(operation_of_line(document, number))
            lines.append(number)
        except InvalidDocument as exc:
            errors.append(exc)
            if len(errors) == MAX_LINE_ERRORS:
                break
    if not errors:
        try:
            check_distinct(operations, lines)
        except InvalidDocument as exc:
            errors.append(exc)
    if errors:
        return _line_errors(errors)
    if not operations:
        raise InvalidRequest("the body holds no lines: one JSON movie a line", code="bad_json")
    report = await _write(request, operations)
    results = [{"line": line, **outcome.as_json()}
               for line, outcome in zip(lines, report.outcomes, strict=True)]  # fmt: skip
    changed = sum(1 for o in report.outcomes if o.result not in ("unchanged", "not_found"))
    return JSONResponse(
        {"catalog_version": report.catalog_version, "changed": changed, "results": results}
    )


def _line_errors(errors: list[InvalidDocument]) -> Response:
    """400 naming the first bad line in the usual error, and every one found in ``errors``."""
    first = errors[0]
    body: dict[str, Any] = {
        "error": {
            "code": first.code,
            "message": first.message,
            "param": first.param,
            "line": first.line,
            "errors": [{"line": e.line, "param": e.param, "message": e.message} for e in errors],
        }
    }
    return JSONResponse(body, status_code=400)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(f"the body is larger than {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"the body is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(message: str) -> InvalidRequest:
    error = InvalidRequest(message, code="too_large")
    error.status_code = 413
    return error


async def _write(request: Request, operations: list[Operation]) -> WriteReport:
    state = request.app.state
    writer: CatalogWriter | None = getattr(state, "catalog_writer", None)
    if writer is None:
        postgresql = state.settings.backend == "postgresql"
        connect = state.engine.pool.connection if postgresql else None
        writer = state.catalog_writer = CatalogWriter(state.settings, connect)
    try:
        return await writer.write(operations)
    except TransactionConflict as exc:  # lost every retry to other writers: try again later
        raise DatabaseUnavailable(f"the catalog is busy with other writes: {exc}") from None
    except DatabaseUnavailable:
        raise
    except CatalogError as exc:  # the catalog can't take it (a 64th genre): the client's to fix
        raise _conflict(str(exc)) from None


def _conflict(message: str) -> InvalidRequest:
    error = InvalidRequest(message, code="conflict")
    error.status_code = 409
    return error


DOCUMENT_ROUTES = [Route("/v1/movies/bulk", bulk, methods=["POST"])]
