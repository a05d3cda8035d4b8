"""The server-rendered page over plain HTTP: results for a direct link, the movie page,
posters, the security headers (CSP without unsafe-inline) and escaping.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterator

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from reelsearch.config import Settings
from reelsearch.http import create_app
from reelsearch.http.page_html import PageState, marked, poster_svg, poster_url
from reelsearch.http.pages import CONTENT_SECURITY_POLICY

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def page_client(web_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings)) as client:
        yield client


def _titles(html: str) -> list[str]:
    return [re.sub("<[^>]+>", "", t) for t in re.findall(r'<a href="/movie/\d+">(.*?)</a>', html)]


def test_html_responses_carry_the_security_headers(page_client: TestClient) -> None:
    """Every page: a CSP with no unsafe-inline that forbids framing, nosniff, a referrer policy."""
    for path in ("/", "/?q=alien", "/movie/1", "/movie/999999999"):
        response = page_client.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    html = page_client.get("/?q=alien").text
    assert "<script>" not in html and " style=" not in html and "<style" not in html


def test_direct_results_link_is_rendered_on_the_server(page_client: TestClient) -> None:
    """/?q=matirx lists The Matrix first, highlighted, with facets and preloaded assets."""
    response = page_client.get("/?q=matirx")
    assert response.status_code == 200
    html = response.text
    assert _titles(html)[0] == "The Matrix"
    assert "The <mark>Matrix</mark></a>" in html
    assert '<input type="checkbox" name="genres" value="Action">' in html
    assert re.search(r'<link rel="modulepreload" href="/static/app\.[0-9a-f]{12}\.js">', html)
    assert 'loading="lazy"' in html and 'width="64" height="96"' in html
    css, js = re.findall(r'href="(/static/app\.[0-9a-f]{12}\.(?:css|js))"', html)
    assert response.headers["link"] == f"<{css}>; rel=preload; as=style, <{js}>; rel=modulepreload"


def test_the_alternate_title_that_matched_is_shown(page_client: TestClient) -> None:
    """A hit found by an alternate title shows it, highlighted, under the title."""
    html = page_client.get("/?q=seven+samurai").text
    assert "Shichinin no <mark>samurai</mark></a>" in html
    assert '<p class="aka">Also known as <mark>Seven</mark> <mark>Samurai</mark></p>' in html


def test_filters_from_a_form_or_a_link(page_client: TestClient) -> None:
    """Checkbox genres (repeated) join into one filter; decade and rating filter; junk is
    ignored; a bad value renders the page with the API's message and a 400."""
    html = page_client.get("/?q=star&genres=Drama&genres=Romance&utm_source=x").text
    assert 'value="Drama" checked' in html and 'value="Romance" checked' in html
    # Genre counts are those of the search without its genres: the others stay on offer.
    counts = page_client.get("/v1/search?q=star&facets=genres&limit=1").json()["facets"]
    shown = dict(
        re.findall(r'value="([^"]+)"(?: checked)?> [^<]+ <span class="count">([\d,]+)', html)
    )
    assert shown == {name: f"{n:,}" for name, n in counts["genres"].items()}
    decade = page_client.get("/?q=star&year_from=1970&year_to=1979&min_rating=7").text
    years = [int(y) for y in re.findall(r'<span class="year">\((\d{4})\)</span>', decade)]
    assert years and all(1970 <= y <= 1979 for y in years)
    bad = page_client.get("/?q=star&year_from=abc")
    assert bad.status_code == 400
    assert "year_from must be a whole number in ASCII digits, not &#x27;abc&#x27;" in bad.text


def test_the_page_holds_the_configured_query_limits(web_settings: Settings) -> None:
    """REELSEARCH_MAX_QUERY_WORDS bounds the page's q as it bounds the API's, below the
    default (a 400 with the API's message) and above it (33 words found, genre counts too)."""
    few, many = "+".join("abcde"), "+".join(["the"] * 32 + ["star"])
    with TestClient(create_app(dataclasses.replace(web_settings, max_query_words=4))) as client:
        refused = client.get(f"/?q={few}")
    with TestClient(create_app(dataclasses.replace(web_settings, max_query_words=40))) as client:
        found = client.get(f"/?q={many}&genres=Drama")
    assert (refused.status_code, found.status_code) == (400, 200)
    assert "q has 5 words after normalization; the limit is 4" in refused.text
    assert 'value="Drama" checked' in found.text and "Star" in "".join(_titles(found.text))


def test_typed_markup_is_escaped(page_client: TestClient) -> None:
    """A query with markup comes back as text, never as markup."""
    html = page_client.get("/?q=%3Cscript%3Ealert(1)%3C/script%3E").text
    assert "<script>alert" not in html
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in html


def test_movie_page_and_more_like_this(page_client: TestClient) -> None:
    """/movie/{id} renders the movie and similar ones (not itself); a missing one is a 404 page."""
    hit = page_client.get("/v1/search?q=the+matrix&limit=1").json()["hits"][0]
    response = page_client.get(f"/movie/{hit['id']}")
    assert response.status_code == 200
    assert "<h1>The Matrix</h1>" in response.text
    similar = response.text.split("More like this", 1)[1]
    assert f'href="/movie/{hit["id"]}"' not in similar
    assert len(_titles(similar)) >= 3
    assert page_client.get("/movie/999999999").status_code == 404
    assert page_client.get("/movie/abc").status_code == 404


def test_poster_placeholder(page_client: TestClient) -> None:
    """A poster is SVG with the title's initials, cacheable, and 304 for its ETag."""
    hit = page_client.get("/v1/search?q=the+matrix&limit=1").json()["hits"][0]
    response = page_client.get(f"/poster/{hit['id']}.svg")
    assert response.headers["content-type"] == "image/svg+xml"
    assert ">M</text>" in response.text
    assert response.headers["cache-control"] == "public, max-age=86400"
    again = page_client.get(
        f"/poster/{hit['id']}.svg", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert page_client.get("/poster/999999999.svg").status_code == 404


def test_render_helpers() -> None:
    """Code-point highlights, initials without articles, a colour per id, a provider's
    image instead of the placeholder, state URLs."""
    assert marked("a😀b<", [[1, 3]]) == "a<mark>😀b</mark>&lt;"
    assert ">SW</text>" in poster_svg(1, "Star Wars") and ">M</text>" in poster_svg(1, "The Matrix")
    assert poster_svg(1, "X") != poster_svg(2, "X")
    assert poster_url({"id": 7}) == "/poster/7.svg"
    assert poster_url({"id": 7, "image_url": "https://img.example/7.jpg"}) == (
        "https://img.example/7.jpg"
    )
    state = PageState(q="star wars", genres=("Drama", "War"), sort="-year")
    assert state.url() == "/?q=star+wars&genres=Drama%2CWar&sort=-year"
    assert PageState().url() == "/"
