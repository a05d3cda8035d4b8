"""The OpenAPI document and the server agree: schemathesis against a live server, and
the strict parsing, 405s and redirects the document promises."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema_rs import Draft202012Validator
from live_server import live_server
from schemathesis.core.warnings import SchemathesisWarning

from reelsearch.config import Settings
from reelsearch.http.openapi_schemas import ERROR_CODES
from reelsearch.search.query import HIT_FIELDS, MOVIE_FIELDS

Client = Any  # starlette.testclient.TestClient, imported by conftest
HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src" / "reelsearch"


def _spec(client: Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert 200 == response.status_code
    return response.json()  # type: ignore[no-any-return]


# -- schemathesis against the live server ---------------------------------------------------


def test_schemathesis_finds_nothing_on_a_live_server(
    small_backend_settings: Settings, tmp_path: Path
) -> None:
    """Every schemathesis check (status codes, response schemas, headers, content types,
    invalid data refused, valid data accepted, unsupported methods) passes against a real
    `reelsearch serve` with the document it serves, on each backend. Bounded: 100 examples
    per operation, a fixed seed."""
    with live_server(small_backend_settings.database_url, tmp_path / "serve.log") as server:
        path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        env = dict(os.environ, SCHEMATHESIS_HOOKS="schemathesis_hooks", PYTHONPATH=path)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "100",
                "--seed",
                "14",
                "--generation-database",
                "none",
                "--request-timeout",
                "10",
                # The documents API answers 401/403 to schemathesis, which has no admin token
                # (it would write into the shared catalog): every other warning still shows.
                "--warnings",
                ",".join(w.value for w in SchemathesisWarning if w.value != "missing_auth"),
            ],  # fmt: skip
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert 0 == run.returncode, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
    assert re.search(r"Tested: 8\b", run.stdout), run.stdout[-2000:]


# -- what the document says -----------------------------------------------------------------


def test_every_operation_has_an_id_and_the_admin_scheme_is_bearer(client: Client) -> None:
    """Each operation has a unique operationId; the admin token is an HTTP bearer scheme."""
    spec = _spec(client)
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert ["searchMovies", "autocompleteTitles", "getMovie", "putMovie", "deleteMovie",
            "writeMovies", "health", "ready"] == ids  # fmt: skip
    assert {"type": "http", "scheme": "bearer"} == {
        k: v for k, v in spec["components"]["securitySchemes"]["adminToken"].items()
        if k != "description"
    }  # fmt: skip


def test_response_fields_per_endpoint(client: Client) -> None:
    """A movie has original_title, updated_at and alt_titles and no hit-only fields;
    a hit has exactly the fields `fields` can name, plus explain."""
    schemas = _spec(client)["components"]["schemas"]
    movie = set(schemas["Movie"]["properties"])
    assert {*MOVIE_FIELDS, "original_title", "updated_at", "alt_titles"} == movie
    assert set(client.get("/v1/movies/4").json()) == movie
    assert {*HIT_FIELDS, "explain"} == set(schemas["Hit"]["properties"])


def test_error_codes_raised_in_the_source_are_documented() -> None:
    """Every error code literal in the source (raised, defaulted or mapped) is documented."""
    literals: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        literals.update(re.findall(r'\bcode(?:: str)? ?= ?"([a-z_]+)"', text))
        literals.update(re.findall(r'"code": "([a-z_]+)"', text))
        literals.update(re.findall(r'error_response\(\s*\d{3},\s*"([a-z_]+)"', text))
        literals.update(re.findall(r'\b\d{3}: "([a-z_]+)"', text))  # status -> code maps
    assert literals <= set(ERROR_CODES), literals - set(ERROR_CODES)
    assert {"invalid", "not_found", "forbidden", "unavailable", "internal"} <= literals


def test_503s_and_their_retry_after_are_documented(client: Client) -> None:
    """The endpoints that read the catalog list a 503 with a Retry-After header."""
    paths = _spec(client)["paths"]
    for path in ("/v1/search", "/v1/autocomplete", "/v1/movies/{movie_id}", "/ready"):
        response = paths[path]["get"]["responses"]["503"]
        assert ["Retry-After"] == list(response["headers"]), path


def _param_schema(spec: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    for param in spec["paths"][path]["get"]["parameters"]:
        if param["name"] == name:
            return param["schema"]  # type: ignore[no-any-return]
    raise KeyError(name)


# (path, parameter, value as sent, value as the document types it)
AGREEMENT = [
    ("/v1/search", "min_votes", "2147483647", 2147483647),
    ("/v1/search", "min_votes", "2147483648", 2147483648),
    ("/v1/search", "limit", "100", 100),
    ("/v1/search", "limit", "101", 101),
    ("/v1/search", "year_from", "1799", 1799),
    ("/v1/search", "min_rating", "10", 10),
    ("/v1/search", "min_rating", "10.5", 10.5),
    ("/v1/search", "q", "star\twars", "star\twars"),
    ("/v1/search", "q", "star\nwars", "star\nwars"),
    ("/v1/search", "q", "\x7f", "\x7f"),
    ("/v1/search", "q", "a" * 256, "a" * 256),
    ("/v1/search", "q", "a" * 257, "a" * 257),
    ("/v1/search", "kind", "movie", "movie"),
    ("/v1/search", "kind", "podcast", "podcast"),
]


@pytest.mark.parametrize(("path", "name", "sent", "typed"), AGREEMENT)
def test_document_and_server_agree_on_edge_values(
    client: Client, path: str, name: str, sent: str, typed: object
) -> None:
    """A value the document's schema accepts is answered 200, one it refuses is a 400."""
    schema = _param_schema(_spec(client), path, name)
    is_valid = Draft202012Validator(schema).is_valid(typed)
    status = client.get(path, params={name: sent}).status_code
    assert (200 if is_valid else 400) == status


@pytest.mark.parametrize(("movie_id", "status"), [("999999999999999999", 404),
                                                  ("1000000000000000000", 400)])  # fmt: skip
def test_movie_id_bounds_match_the_document(client: Client, movie_id: str, status: int) -> None:
    """18 digits is the largest id the document allows: a 404 there, a 400 past it."""
    schema = _spec(client)["paths"]["/v1/movies/{movie_id}"]["get"]["parameters"][0]["schema"]
    assert (status == 404) == Draft202012Validator(schema).is_valid(int(movie_id))
    assert status == client.get(f"/v1/movies/{movie_id}").status_code


# -- strict parsing --------------------------------------------------------------------------

NOT_ASCII_NUMBERS = [
    "limit=1_0",
    "limit=%2B5",
    "limit=%205",
    "limit=5%20",
    "limit=-0",
    "limit=%D9%A5",  # Arabic-Indic five
    "limit=%EF%BC%95",  # full-width five
    "limit=%E0%A5%AB",  # Devanagari five
    "limit=0x5",
    "year_from=1_999",
    "min_votes=1e3",
    "offset=%2B0",
    "min_rating=inf",
    "min_rating=nan",
    "min_rating=1_0",
    "min_rating=%EF%BC%95",
    "min_rating=%2B5",
    "min_rating=.5",
]


@pytest.mark.parametrize("query", NOT_ASCII_NUMBERS)
def test_numbers_are_ascii_digits_only(client: Client, query: str) -> None:
    """Underscores, signs, spaces and other scripts' digits are a 400 naming the parameter."""
    response = client.get(f"/v1/search?{query}")
    assert 400 == response.status_code
    assert query.split("=")[0] == response.json()["error"]["param"]


@pytest.mark.parametrize("query", ["limit=5", "limit=005", "min_rating=7.5", "min_rating=1e-1"])
def test_ascii_numbers_are_accepted(client: Client, query: str) -> None:
    """Plain ASCII digits (leading zeros too) and decimal notation are numbers."""
    assert 200 == client.get(f"/v1/search?{query}").status_code


@pytest.mark.parametrize("query", ["q=%zz", "q=100%", "q=%4", "q=star&genres=%G1", "%zz=1"])
def test_bad_percent_encoding_is_a_400(client: Client, query: str) -> None:
    """A '%' not followed by two hex digits is refused, not searched literally."""
    response = client.get(f"/v1/search?{query}")
    assert (400, "bad_encoding") == (response.status_code, response.json()["error"]["code"])


EVERY_PARAMETER = ["cursor", "limit", "offset", "min_votes", "min_rating", "year_from",
                   "year_to", "kind", "genres", "genres_mode", "sort", "fields", "facets",
                   "explain"]  # fmt: skip


@pytest.mark.parametrize("name", EVERY_PARAMETER)
def test_an_empty_value_is_the_same_as_no_value(client: Client, name: str) -> None:
    """`name=` answers exactly what leaving `name` out answers, for every parameter."""
    without = client.get("/v1/search?q=star")
    empty = client.get(f"/v1/search?q=star&{name}=")
    # The server time is a header (Server-Timing), so the bodies are byte for byte the same.
    assert without.content == empty.content


def test_empty_cursor_with_offset_is_not_a_conflict(client: Client) -> None:
    """An empty cursor is no cursor, so it does not clash with offset."""
    assert 200 == client.get("/v1/search?q=star&offset=1&cursor=").status_code


# -- methods and redirects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v1/search", "GET, HEAD"),
        ("POST", "/v1/movies/1", "DELETE, GET, HEAD, PUT"),
        ("PUT", "/health", "GET, HEAD"),
    ],  # fmt: skip
)
def test_405_carries_allow(client: Client, method: str, path: str, allow: str) -> None:
    """A 405 names the methods the path has in Allow, with the JSON error body."""
    response = client.request(method, path)
    methods = sorted(m.strip() for m in response.headers.get("allow", "").split(","))
    assert (405, sorted(allow.split(", "))) == (response.status_code, methods)
    assert "method_not_allowed" == response.json()["error"]["code"]


def test_no_redirect_is_built_from_the_host_header(client: Client) -> None:
    """A trailing slash is a 404, never a redirect to the Host the client sent."""
    response = client.get(
        "/v1/search/?q=x", headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert (404, None) == (response.status_code, response.headers.get("location"))


def test_no_redirect_on_the_live_server(small_db: Path, tmp_path: Path) -> None:
    """Through granian too: no Location header, whatever Host says."""
    with live_server(f"sqlite:///{small_db}", tmp_path / "serve.log") as server:
        response = httpx.get(server.url + "/v1/search/?q=x", headers={"Host": "evil.example"})
    assert (404, None) == (response.status_code, response.headers.get("location"))
