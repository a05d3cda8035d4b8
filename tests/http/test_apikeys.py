"""API keys stored hashed, and scoped search tokens: filters enforced, cap, expiry, tampering."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from reelsearch.config import Settings
from reelsearch.errors import ConfigError
from reelsearch.http.apikeys import (
    check_scoped_token,
    hash_key,
    new_key,
    parse_keys,
    sign_scoped_token,
)
from reelsearch.http.app import create_app

SEARCH_KEY = new_key()
ADMIN_ONLY_KEY = new_key()
KEYS = (f"web:{hash_key(SEARCH_KEY).hex()}:search,"
        f"ops:{hash_key(ADMIN_ONLY_KEY).hex()}:admin")  # fmt: skip


@pytest.fixture(scope="module")
def keyed(small_settings: Settings) -> Iterator[TestClient]:
    app = create_app(replace(small_settings, api_keys=KEYS, rate_limit=1.0, rate_limit_burst=50))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _search(client: TestClient, query: str, key: str | None) -> Any:
    headers = {} if key is None else {"X-API-Key": key}
    return client.get(f"/v1/search?{query}", headers=headers)


def test_keys_are_stored_as_hashes_only() -> None:
    """The setting holds the SHA-256 of a key, never the key; bad entries fail at startup."""
    keys = parse_keys(KEYS)
    assert {"web", "ops"} == {key.id for key in keys.values()}
    assert SEARCH_KEY not in KEYS and hash_key(SEARCH_KEY) in keys
    for bad in ("web:abc:search", "web:" + "00" * 32 + ":write", "no-colons"):
        with pytest.raises(ConfigError, match="REELSEARCH_API_KEYS"):
            parse_keys(bad)


def test_a_key_searches_and_is_its_own_rate_limit_client(keyed: TestClient) -> None:
    """A valid key is answered and counted under its id, apart from its address."""
    response = _search(keyed, "q=alien", SEARCH_KEY)
    anonymous = _search(keyed, "q=alien", None)
    assert (200, 200) == (response.status_code, anonymous.status_code)
    assert int(response.headers["ratelimit-remaining"]) != 0
    assert response.headers["ratelimit-remaining"] == anonymous.headers["ratelimit-remaining"]


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [("rsk_guess", 401, "invalid_api_key"), (ADMIN_ONLY_KEY, 403, "forbidden")],
)
def test_unknown_keys_and_keys_without_search_are_refused(
    keyed: TestClient, key: str, status: int, code: str
) -> None:
    """An unknown key is a 401 with WWW-Authenticate; a key without "search" is a 403."""
    response = _search(keyed, "q=alien", key)
    assert (status, code) == (response.status_code, response.json()["error"]["code"])
    assert "nosniff" == response.headers["x-content-type-options"]


def test_a_key_can_be_required(small_settings: Settings) -> None:
    """With REELSEARCH_REQUIRE_API_KEY, a /v1/ request without a key is a 401; probes are not."""
    app = create_app(replace(small_settings, api_keys=KEYS, require_api_key=True))
    with TestClient(app) as client:
        assert 401 == client.get("/v1/search?q=alien").status_code
        assert (
            200 == client.get("/v1/search?q=alien", headers={"X-API-Key": SEARCH_KEY}).status_code
        )
        assert 200 == client.get("/health").status_code


def _token(filters: dict[str, str], cap: int = 20, ttl: int = 60) -> str:
    return sign_scoped_token(SEARCH_KEY, "web", filters, cap, ttl)


def test_a_scoped_token_fixes_its_filters(keyed: TestClient) -> None:
    """Every hit of a search with a genres=Horror token is a horror film; the same search
    with the plain key finds others too."""
    token = _token({"genres": "Horror"})
    scoped = _search(keyed, "q=alien&fields=title,genres", token).json()["hits"]
    plain = _search(keyed, "q=alien&fields=title,genres", SEARCH_KEY).json()["hits"]
    assert ["Alien"] == [hit["title"] for hit in scoped]
    assert {"Alien", "Aliens", "Alien Nation: Dark Horizon"} <= {hit["title"] for hit in plain}


def test_a_scoped_token_refuses_a_wider_filter(keyed: TestClient) -> None:
    """Sending another value for a fixed filter is a 403 naming it; the same value is fine."""
    token = _token({"genres": "Horror"})
    other = _search(keyed, "q=alien&genres=Action", token)
    same = _search(keyed, "q=alien&genres=Horror", token)
    assert (403, "genres") == (other.status_code, other.json()["error"]["param"])
    assert 200 == same.status_code


def test_a_scoped_token_caps_the_results(keyed: TestClient) -> None:
    """cap=3: limit is lowered to fit, offset past the cap and cursors are refused."""
    token = _token({}, cap=3)
    page = _search(keyed, "q=the&limit=10", token).json()
    assert 3 == len(page["hits"])
    second = _search(keyed, "q=the&limit=2&offset=2", token).json()
    assert 1 == len(second["hits"])
    assert 403 == _search(keyed, "q=the&offset=3", token).status_code
    assert 403 == _search(keyed, "q=the&cursor=abc", token).status_code


def test_a_scoped_token_is_for_search_only(keyed: TestClient) -> None:
    """Autocomplete and movie lookups can't apply its filters: a 403."""
    token = _token({"genres": "Horror"})
    assert 403 == keyed.get("/v1/autocomplete?q=al", headers={"X-API-Key": token}).status_code
    assert 403 == keyed.get("/v1/movies/1", headers={"X-API-Key": token}).status_code


def test_an_expired_token_is_refused(keyed: TestClient) -> None:
    """A token past its expiry is a 401 saying so; checking needs no database."""
    token = _token({}, ttl=-1)
    response = _search(keyed, "q=alien", token)
    assert (401, "the scoped token has expired") == (
        response.status_code,
        response.json()["error"]["message"],
    )


def _tampered(token: str) -> str:
    """The token with its payload's genre changed and the old signature kept."""
    body, signature = token[4:].split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    forged = base64.urlsafe_b64encode(payload.replace(b"Horror", b"Action")).rstrip(b"=")
    return f"rst_{forged.decode()}.{signature}"


def test_a_tampered_or_foreign_token_is_refused(keyed: TestClient) -> None:
    """A changed payload, a token signed with another key and garbage are all 401s."""
    genuine = _token({"genres": "Horror"})
    other_key = sign_scoped_token(new_key(), "web", {"genres": "Horror"}, 20, 60)
    for token in (_tampered(genuine), other_key, "rst_garbage", "rst_a.b"):
        response = _search(keyed, "q=alien", token)
        assert (401, "invalid_api_key") == (response.status_code, response.json()["error"]["code"])


def test_check_scoped_token_reads_what_was_signed() -> None:
    """The checked scope holds the key, filters, cap and expiry that were signed."""
    token = sign_scoped_token(SEARCH_KEY, "web", {"kind": "movie", "min_votes": "1000"}, 7, 60)
    scope = check_scoped_token(token, parse_keys(KEYS), time.time())
    assert ("web", {"kind": "movie", "min_votes": "1000"}, 7) == (
        scope.key.id,
        scope.filters,
        scope.cap,
    )
    with pytest.raises(ValueError, match="can fix only"):
        sign_scoped_token(SEARCH_KEY, "web", {"q": "alien"}, 7, 60)
