"""Security headers, CORS, who sees /ready's details, and the admin token's rules."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import live_server
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.errors import ConfigError
from reelsearch.http.app import create_app

Client = Any
TOKEN = "t0ken-" * 6  # 36 characters
EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "server": "reelsearch",
}


def _security_headers(response: httpx.Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in EXPECTED}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/v1/search?q=alien", 200),
        ("GET", "/v1/search?limit=x", 400),
        ("GET", "/nope", 404),
        ("POST", "/v1/search", 405),
        ("GET", "/openapi.json", 200),
    ],  # fmt: skip
)
def test_security_headers_on_every_response(
    client: Client, method: str, path: str, status: int
) -> None:
    """Success, 4xx and 405 alike carry nosniff, Referrer-Policy, X-Frame-Options and a
    Server header without product or version detail."""
    response = client.request(method, path)
    assert (status, EXPECTED) == (response.status_code, _security_headers(response))


def test_security_headers_through_granian(small_db: Path, tmp_path: Path) -> None:
    """On the real server too: granian's own "server: granian" is replaced."""
    with live_server(f"sqlite:///{small_db}", tmp_path / "serve.log") as server:
        response = httpx.get(server.url + "/health")
    assert EXPECTED == _security_headers(response)
    assert ["reelsearch"] == response.headers.get_list("server")


def test_a_500_carries_the_headers_too(small_settings: Settings) -> None:
    """An unexpected error is answered outside the middleware; it still gets the headers."""
    app = create_app(small_settings)

    async def boom(request: Any) -> Any:
        raise RuntimeError("a bug")

    app.add_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom")
    assert (500, "internal") == (response.status_code, response.json()["error"]["code"])
    assert EXPECTED == _security_headers(response)


@pytest.fixture(scope="module")
def cors_client(small_settings: Settings) -> Any:
    settings = replace(small_settings, cors_origins="https://app.example, https://b.example")
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_cors_preflight_from_an_allowed_origin(cors_client: Client) -> None:
    """A preflight from a configured origin is answered 200 with that origin allowed."""
    response = cors_client.options(
        "/v1/search",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },  # fmt: skip
    )
    assert 200 == response.status_code
    assert "https://app.example" == response.headers["access-control-allow-origin"]
    assert "600" == response.headers["access-control-max-age"]
    assert "nosniff" == response.headers["x-content-type-options"]


def test_cors_simple_request_names_the_origin(cors_client: Client) -> None:
    """A GET from an allowed origin gets Access-Control-Allow-Origin; others get none."""
    allowed = cors_client.get("/v1/search?q=alien", headers={"Origin": "https://b.example"})
    other = cors_client.get("/v1/search?q=alien", headers={"Origin": "https://evil.example"})
    assert "https://b.example" == allowed.headers["access-control-allow-origin"]
    assert None is other.headers.get("access-control-allow-origin")


def test_cors_preflight_from_another_origin_is_refused(cors_client: Client) -> None:
    """A preflight from an origin not configured is refused, without the allow header."""
    response = cors_client.options(
        "/v1/search",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert (400, "cors_refused") == (response.status_code, response.json()["error"]["code"])
    assert "Disallowed CORS origin" == response.json()["error"]["message"]
    assert None is response.headers.get("access-control-allow-origin")


def test_without_cors_origins_a_preflight_is_a_405(client: Client) -> None:
    """CORS is off by default: no allow header, OPTIONS is a 405 naming GET."""
    response = client.options(
        "/v1/search",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert 405 == response.status_code
    assert None is response.headers.get("access-control-allow-origin")


@pytest.mark.parametrize(
    ("allowed", "address", "detailed"),
    [
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "192.0.2.1", False),
        ("127.0.0.1, ::1", "::1", True),
        ("", "127.0.0.1", False),
    ],  # fmt: skip
)
def test_ready_details_from_configured_addresses(
    small_settings: Settings, allowed: str, address: str, detailed: bool
) -> None:
    """/ready shows the catalog version and size to the configured networks only."""
    app = create_app(replace(small_settings, ready_details_from=allowed))
    with TestClient(app, client=(address, 50000)) as test_client:
        body = test_client.get("/ready").json()
    up = {"state": "up", "required": True, "reason": "ok"}
    expected = {"status": "ready", "dependencies": {"catalog": up, "migrations": up},
                "catalog_version": 1, "movies": 30}  # fmt: skip
    assert (expected if detailed else {"status": "ready"}) == body


def test_ready_details_with_the_admin_token(small_settings: Settings) -> None:
    """The admin token shows /ready's details from any address; a wrong token does not."""
    app = create_app(replace(small_settings, admin_token=TOKEN))
    with TestClient(app) as test_client:
        right = test_client.get("/ready", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        wrong = test_client.get("/ready", headers={"Authorization": "Bearer nope"}).json()
    assert (1, 30, "up") == (right["catalog_version"], right["movies"],
                             right["dependencies"]["catalog"]["state"])  # fmt: skip
    assert {"status": "ready"} == wrong


@pytest.mark.parametrize("token", ["short", "x" * 31])
def test_a_short_admin_token_fails_at_startup(token: str) -> None:
    """An admin token under 32 characters is a configuration error naming the variable."""
    with pytest.raises(ConfigError, match="REELSEARCH_ADMIN_TOKEN' must be at least 32"):
        Settings.from_env({"REELSEARCH_ADMIN_TOKEN": token})
    assert "x" * 32 == Settings.from_env({"REELSEARCH_ADMIN_TOKEN": "x" * 32}).admin_token


def test_a_bad_ready_details_network_fails_at_startup() -> None:
    """A REELSEARCH_READY_DETAILS_FROM entry that is not an address is a ConfigError."""
    with pytest.raises(ConfigError, match="READY_DETAILS_FROM"):
        Settings.from_env({"REELSEARCH_READY_DETAILS_FROM": "10.0.0.0/8, not-an-ip"})


def test_a_wrong_admin_token_is_logged(small_settings: Settings) -> None:
    """Each refused admin credential logs a warning with the address, never the credential."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    # Attached to the admin logger itself: the app's logging stops records at "reelsearch"
    # (propagate off), and other apps' background tasks may log at the root meanwhile.
    admin_logger = logging.getLogger("reelsearch.http.admin")
    admin_logger.addHandler(handler)
    app = create_app(replace(small_settings, admin_token=TOKEN))
    try:
        with TestClient(app, client=("192.0.2.7", 1234)) as test_client:
            response = test_client.get(
                "/v1/search?q=alien&explain=true", headers={"Authorization": "Bearer guess-1"}
            )
    finally:
        admin_logger.removeHandler(handler)
    assert 403 == response.status_code
    messages = [record.getMessage() for record in records]
    assert ["refused a wrong admin token for explain from 192.0.2.7 (GET /v1/search)"] == messages
    assert not any("guess-1" in message for message in messages)
