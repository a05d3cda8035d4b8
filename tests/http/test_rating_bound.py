"""``min_rating`` is a decimal bound compared with each movie's rating as the API shows it:
a movie rated exactly at the bound is in, one rated under it is out, however many digits
the bound is written with. On the real sample, on each backend, through the app (with its
result cache on, so a bound's answer is never served for another bound)."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

from typing import Any

import pytest

Client = Any  # starlette.testclient.TestClient, imported by conftest

# The sample's "godfather" titles rated 6.9 or more, by rating, then rank:
# 3 Godfathers (6.9), The Godfather: Part III (7.3), Tokyo Godfathers and Three Godfathers
# (7.6), The Godfather: Part II (8.9), The Godfather (9.1).
FROM_7_3 = [20547, 52515, 51885, 20546, 20545]
ABOVE_7_3 = FROM_7_3[1:]
# The sample's titles "alien" finds (typos and all) rated 7 or more, by rating, then rank:
# Yo Alien (7.0), the short Aliens (7.3), Aliens, Alien and Hung wen tin san po pai lien
# chiao (8.3), Missing Allen (8.4), Giger's Alien (8.9), Aien kyo (9.2).
FROM_7 = [58067, 1680, 1679, 1652, 24290, 33873, 20146, 1364]


def rated_ids(client: Client, q: str, min_rating: str) -> list[int]:
    response = client.get(
        "/v1/search",
        params={"q": q, "min_rating": min_rating, "sort": "rating", "fields": "id,rating"},
    )
    assert 200 == response.status_code, response.text
    return [hit["id"] for hit in response.json()["hits"]]


@pytest.mark.parametrize("bound", ["7.3", "7.30", "73e-1", "7.29999999999999999"])
def test_a_movie_rated_at_the_bound_is_in(sample_client: Client, bound: str) -> None:
    """min_rating equal to a movie's rating (in any decimal spelling, or a hair under it)
    keeps that movie: The Godfather: Part III, rated 7.3, leads the list."""
    assert FROM_7_3 == rated_ids(sample_client, "godfather", bound)


@pytest.mark.parametrize("bound", ["7.31", "7.300000001", "7.3000000000000001"])
def test_a_movie_rated_under_the_bound_is_out(sample_client: Client, bound: str) -> None:
    """min_rating above a movie's rating leaves it out, even by less than a double can
    tell from 7.3 (7.3000000000000001 reads as the double 7.3): Part III is gone; asked
    after the bound 7.3 itself, so the cache can't hand one bound's answer to the other."""
    assert FROM_7_3 == rated_ids(sample_client, "godfather", "7.3")
    assert ABOVE_7_3 == rated_ids(sample_client, "godfather", bound)


@pytest.mark.parametrize(
    ("bound", "expected"),
    [("7", FROM_7), ("7.0", FROM_7), ("6.99", FROM_7), ("7.000000001", FROM_7[1:]),
     ("7.05", FROM_7[1:]), ("7.3", FROM_7[1:]), ("7.31", FROM_7[2:])],
)  # fmt: skip
def test_bounds_between_one_decimal_ratings(
    sample_client: Client, bound: str, expected: list[int]
) -> None:
    """Bounds with more decimals than the ratings have are compared as written, not
    rounded to one decimal: 7.05 and 7.000000001 leave Yo Alien (7.0) out and keep
    the short Aliens (7.3)."""
    assert expected == rated_ids(sample_client, "alien", bound)


@pytest.mark.parametrize("bound", ["10.0000000000000001", "10.01", "11"])
def test_a_bound_over_ten_is_refused(sample_client: Client, bound: str) -> None:
    """A bound over 10, however little, is a 400 naming min_rating (not read as 10)."""
    response = sample_client.get("/v1/search", params={"q": "alien", "min_rating": bound})
    error = response.json()["error"]
    assert (400, "min_rating", "min_rating must be between 0 and 10") == (
        response.status_code, error["param"], error["message"]
    )  # fmt: skip
