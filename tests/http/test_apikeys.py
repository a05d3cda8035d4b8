"""API keys stored hashed, and scoped search tokens: filters enforced, cap, expiry, tampering."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

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


@pytest.fixture(scope="module")
def unlimited(small_settings: Settings) -> Iterator[TestClient]:
    """The keys without a rate limit: the tests below send more searches than a burst."""
    app = create_app(replace(small_settings, api_keys=KEYS))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _titles(response: Any) -> tuple[int, Any]:
    """The status and the hits' titles (or the error, which the assert then shows)."""
    body = response.json()
    return response.status_code, [hit["title"] for hit in body["hits"]] if "hits" in body else body


@pytest.mark.parametrize(
    ("fixed", "name", "spellings", "expected"),
    [
        ({"min_rating": "7"}, "min_rating", ["7", "7.0", "07", "7.00", "0.7e1"],
         ["Star Wars", "Star Trek"]),
        ({"min_votes": "1000"}, "min_votes", ["1000", "01000", "0001000"],
         ["Star Wars", "Star Trek"]),
        ({"year_from": "2000"}, "year_from", ["2000", "02000"], ["Star", "Star Trek"]),
        ({"year_to": "2000"}, "year_to", ["2000", "02000"], ["Star Wars"]),
        ({"genres": "Sci-Fi"}, "genres", ["Sci-Fi", "sci-fi", "SCI-FI", " Sci-Fi", "Sci-Fi,sci-fi"],
         ["Star Trek"]),
        ({"genres": "Drama,Fantasy"}, "genres", ["fantasy,drama", "Fantasy, Drama"],
         ["Star", "Star Wars"]),
        ({"genres": "Action,Sci-Fi", "genres_mode": "all"}, "genres_mode", ["all"],
         ["Star Trek"]),
        ({"kind": "movie"}, "kind", ["movie"], ["Star", "Star Wars", "Star Trek"]),
    ],
)  # fmt: skip
def test_a_fixed_filter_takes_every_spelling_of_its_value(
    unlimited: TestClient, fixed: dict[str, str], name: str, spellings: list[str],
    expected: list[str],
) -> None:  # fmt: skip
    """A value the search parser reads as the token's own is that filter, not a 403:
    min_rating=7 takes 7.0, 07, 7.00 and 0.7e1 (one bound), min_votes/year 01000/02000,
    genres any case and order (Sci-Fi and sci-fi, Drama,Fantasy and fantasy,drama), a
    choice (genres_mode) or kind its one spelling; the hits are the token's alone."""
    token = _token(fixed)
    alone = _search(unlimited, "q=star", token)
    assert (200, expected) == _titles(alone)
    for spelling in spellings:
        response = _search(unlimited, f"q=star&{name}={quote(spelling)}", token)
        assert (spelling, (200, expected)) == (spelling, _titles(response))


@pytest.mark.parametrize(
    ("fixed", "name", "other"),
    [
        ({"min_rating": "7"}, "min_rating", "7.01"),
        ({"min_rating": "7"}, "min_rating", "6.99"),
        # More digits than a double holds: the parser reads it as the next double above 7.
        ({"min_rating": "7"}, "min_rating", "7.0000000000000001"),
        ({"min_votes": "1000"}, "min_votes", "1001"),
        ({"year_from": "2000"}, "year_from", "1999"),
        ({"year_to": "2000"}, "year_to", "02001"),
        ({"genres": "Sci-Fi"}, "genres", "Drama"),
        ({"genres": "Sci-Fi"}, "genres", "Sci-Fi,Drama"),
        ({"genres": "Sci-Fi"}, "genres", "Nonsense"),
        ({"genres": "Action,Sci-Fi", "genres_mode": "all"}, "genres_mode", "any"),
        ({"kind": "movie"}, "kind", "tvSeries"),
        ({"kind": "movie"}, "kind", "Movie"),
    ],
)  # fmt: skip
def test_a_fixed_filter_refuses_another_value(
    unlimited: TestClient, fixed: dict[str, str], name: str, other: str
) -> None:
    """A value the parser reads as a different one than the token's is a 403 naming the
    filter ("<name> is fixed by the scoped token"), however it is spelled."""
    response = _search(unlimited, f"q=star&{name}={quote(other)}", _token(fixed))
    assert (403, {"code": "forbidden", "message": f"{name} is fixed by the scoped token",
                  "param": name}) == (response.status_code, response.json()["error"])  # fmt: skip


@pytest.mark.parametrize(
    ("fixed", "name", "malformed", "message"),
    [
        ({"min_rating": "7"}, "min_rating", "abc", "min_rating must be a number, not 'abc'"),
        ({"min_rating": "7"}, "min_rating", "7.", "min_rating must be a number, not '7.'"),
        ({"min_rating": "7"}, "min_rating", "70", "min_rating must be between 0 and 10"),
        ({"min_votes": "1000"}, "min_votes", "1e3",
         "min_votes must be a whole number in ASCII digits, not '1e3'"),
        ({"year_from": "2000"}, "year_from", "1700", "year_from must be between 1800 and 2200"),
        ({"genres_mode": "all"}, "genres_mode", "ALL",
         "genres_mode must be one of any, all, not 'ALL'"),
    ],
)  # fmt: skip
def test_a_malformed_value_of_a_fixed_filter_is_the_same_400(
    unlimited: TestClient, fixed: dict[str, str], name: str, malformed: str, message: str
) -> None:
    """A value the parser refuses is the 400 it is without a token (not a 403): the same
    status and body, naming the parameter."""
    query = f"q=star&{name}={quote(malformed)}"
    scoped = _search(unlimited, query, _token(fixed))
    plain = _search(unlimited, query, None)
    expected = {"code": "invalid", "message": message, "param": name}
    assert (400, expected) == (plain.status_code, plain.json()["error"])
    assert (400, plain.content) == (scoped.status_code, scoped.content)


def test_a_fixed_value_no_search_takes_is_the_routes_400(unlimited: TestClient) -> None:
    """A token signed by hand with min_rating=high: every search with it is the route's 400
    naming the token's value, whether the client sends min_rating (7) or not."""
    token = _token({"min_rating": "high"})
    expected = {"code": "invalid", "message": "min_rating must be a number, not 'high'",
                "param": "min_rating"}  # fmt: skip
    for query in ("q=star", "q=star&min_rating=7"):
        response = _search(unlimited, query, token)
        assert (query, 400, expected) == (query, response.status_code, response.json()["error"])
