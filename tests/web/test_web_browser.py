"""The page in real headless chromium (Debian's, driven by Playwright) against the real
app on the sample catalog: search as you type, results and their URL, filters and
facets, back and forward, the movie page, the session's lists per browser, the asset
budget and caching, the page without JavaScript, and no CSP violation anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.browser

# The budget for the first load of /.
BUDGET_BYTES = 60 * 1024
BUDGET_REQUESTS = 6


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (cookies, cache) per test; fails on any CSP violation."""
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    problems: list[str] = []

    def watch(page: Any) -> None:
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))

    made.on("page", watch)
    made.set_default_timeout(10_000)
    yield made
    made.close()
    assert [p for p in problems if "Content Security Policy" in p or "Error" in p] == []


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _settled(page: Any) -> None:
    """Wait until the results show the answer to the latest search (aria-busy cleared)."""
    page.wait_for_function("() => !document.querySelector('#results[aria-busy]')")


def _hit_titles(page: Any) -> list[str]:
    return list(page.locator("#hits .hit-title a").all_inner_texts())


def test_typing_a_typo_suggests_and_enter_shows_results(context: Any, web_url: str) -> None:
    """Typing "matirx" letter by letter lists The Matrix among the suggestions; Enter
    gives a results URL holding the query with The Matrix first, its word highlighted."""
    page = context.new_page()
    page.goto(web_url + "/")
    box = page.locator("#q")
    box.press_sequentially("matirx", delay=60)
    page.wait_for_function(
        "() => document.querySelector('#suggestions').innerText.includes('The Matrix')"
    )
    assert box.get_attribute("aria-expanded") == "true"
    box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == "suggestion-0"
    assert page.locator("#suggestion-0").get_attribute("aria-selected") == "true"
    box.press("Escape")
    assert box.get_attribute("aria-expanded") == "false"
    box.press("Enter")
    page.wait_for_url(re.compile(r"/\?q=matirx$"))
    page.wait_for_selector("#hits .hit")
    assert _hit_titles(page)[0] == "The Matrix"
    assert page.locator("#hits .hit-title mark").first.inner_text() == "Matrix"


# Wraps fetch in the page so the answer for "ma" arrives 800 ms late, after the
# answer for what was typed next.
_SLOW_FIRST_ANSWER = """
const realFetch = window.fetch;
window.fetch = (url, options) => realFetch(url, options).then((response) =>
  String(url).includes("q=ma&")
    ? new Promise((resolve) => setTimeout(() => resolve(response), 800))
    : response);
"""


def test_a_late_suggestion_answer_is_not_shown(context: Any, web_url: str) -> None:
    """When the answer for an earlier prefix arrives after the latest one, the list keeps
    the latest: answers are never shown out of order."""
    page = context.new_page()
    page.add_init_script(_SLOW_FIRST_ANSWER)
    page.goto(web_url + "/")
    page.locator("#q").press_sequentially("ma")
    page.wait_for_timeout(150)  # past the debounce: the slow "ma" request is out
    page.locator("#q").press_sequentially("trix")
    page.wait_for_function(
        "() => document.querySelector('#suggestions').innerText.includes('The Matrix')"
    )
    page.wait_for_timeout(1_000)  # the "ma" answer has arrived by now
    shown = page.locator("#suggestions [role=option]").all_inner_texts()
    assert shown and all("matrix" in text.lower() for text in shown[:3]), shown


def test_enter_on_a_suggestion_opens_the_movie(context: Any, web_url: str) -> None:
    """Arrow down to the first suggestion and Enter: its movie page, at its own URL."""
    page = context.new_page()
    page.goto(web_url + "/")
    page.locator("#q").press_sequentially("the matrix", delay=20)
    page.wait_for_selector("#suggestion-0")
    page.locator("#q").press("ArrowDown")
    page.locator("#q").press("Enter")
    page.wait_for_url(re.compile(r"/movie/\d+$"))
    assert page.locator("h1").inner_text() == "The Matrix"


def test_filters_facets_and_history(context: Any, web_url: str) -> None:
    """A genre facet, a decade facet and the sort change the results and the URL; back
    and forward restore each state."""
    page = context.new_page()
    page.goto(web_url + "/?q=star")
    first = _hit_titles(page)
    genre = page.locator("#facet-genres input").first.get_attribute("value")
    page.locator(f'#facet-genres input[value="{genre}"]').check()
    page.wait_for_url(re.compile(r"genres="))
    _settled(page)
    assert [genre] == _query(page.url)["genres"]
    page.wait_for_function("() => document.querySelectorAll('#facet-genres input:checked').length")
    assert page.locator("#facet-genres input").count() > 1  # the others stay on offer
    genres_per_hit = page.locator("#hits .genres").all_inner_texts()
    assert genres_per_hit and all(genre in text.split(" · ") for text in genres_per_hit)
    with_genre = _hit_titles(page)

    page.locator("#facet-decades a").first.click()
    page.wait_for_url(re.compile(r"year_from="))
    _settled(page)
    decade = int(_query(page.url)["year_from"][0])
    page.wait_for_function(
        f"() => document.querySelector('#filters [name=year_from]').value == '{decade}'"
    )
    years = [int(y.strip("()")) for y in page.locator("#hits .year").all_inner_texts()]
    assert years and all(decade <= y <= decade + 9 for y in years)

    page.locator("#filters select[name=sort]").select_option("-year")
    page.wait_for_url(re.compile(r"sort=-year"))
    _settled(page)
    page.wait_for_function("() => document.querySelectorAll('#hits .year').length > 0")
    newest = [int(y.strip("()")) for y in page.locator("#hits .year").all_inner_texts()]
    assert newest == sorted(newest, reverse=True)

    page.go_back()
    page.wait_for_function(
        "() => document.querySelector('#filters [name=sort]').value === 'relevance'"
    )
    _settled(page)
    assert "sort" not in _query(page.url)
    page.go_back()
    page.wait_for_function("() => !location.search.includes('year_from')")
    _settled(page)
    page.wait_for_function(
        f"() => document.querySelectorAll('#hits .hit').length == {len(with_genre)}"
    )
    assert with_genre == _hit_titles(page)
    page.go_back()
    page.wait_for_function("() => !location.search.includes('genres')")
    _settled(page)
    page.wait_for_function("() => !document.querySelector('#facet-genres input:checked')")
    assert first == _hit_titles(page)
    page.go_forward()
    page.wait_for_function("() => location.search.includes('genres')")
    _settled(page)
    page.wait_for_function(
        f"() => document.querySelectorAll('#hits .hit').length == {len(with_genre)}"
    )
    assert with_genre == _hit_titles(page)


def test_more_results_by_cursor(context: Any, web_url: str) -> None:
    """More results appends the next page from the cursor, without repeats."""
    page = context.new_page()
    page.goto(web_url + "/?q=love")
    assert len(_hit_titles(page)) == 20
    page.locator("#more").click()
    page.wait_for_function("() => document.querySelectorAll('#hits .hit').length == 40")
    ids = page.locator("#hits .hit").evaluate_all("items => items.map(i => i.dataset.id)")
    assert len(set(ids)) == 40


def test_movie_url_opened_directly(context: Any, web_url: str) -> None:
    """A movie's URL renders the movie and more like it."""
    page = context.new_page()
    page.goto(web_url + "/?q=the+matrix")
    href = page.locator("#hits .hit-title a").first.get_attribute("href")
    fresh = context.new_page()
    fresh.goto(web_url + href)
    assert fresh.locator("h1").inner_text() == "The Matrix"
    assert fresh.locator(".similar .hit").count() >= 3


def test_lists_survive_reload_and_are_per_browser(browser: Any, web_url: str) -> None:
    """Recent searches and the watchlist are kept on the server per browser: they survive
    a reload, and a second browser profile sees neither."""
    first = browser.new_context()
    page = first.new_page()
    page.goto(web_url + "/")
    page.locator("#q").fill("matirx")
    page.locator("#q").press("Enter")
    page.wait_for_selector("#recent li")
    page.locator("#hits .hit form.watch button").first.click()
    page.wait_for_selector("#watchlist li")
    page.reload()
    assert page.locator("#recent li").all_inner_texts() == ["matirx"]
    assert page.locator("#watchlist li").all_inner_texts() == ["The Matrix (1999)"]
    assert (
        page.locator("#hits .hit form.watch button").first.get_attribute("aria-pressed") == "true"
    )
    cookie = next(c for c in first.cookies() if c["name"] == "rs_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    second = browser.new_context()
    other = second.new_page()
    other.goto(web_url + "/?q=matirx")
    assert other.locator("#recent li").count() == 0
    assert other.locator("#watchlist li").count() == 0
    assert second.cookies() == []

    page.locator("#watchlist li").first.wait_for()
    page.locator("#hits .hit form.watch button").first.click()
    page.wait_for_function("() => !document.querySelector('#watchlist li')")
    page.reload()
    assert page.locator("#watchlist li").count() == 0
    first.close()
    second.close()


def _transfers(page: Any) -> list[tuple[str, int]]:
    """(url, bytes over the wire: headers + encoded body) of each request as it finishes."""
    seen: list[tuple[str, int]] = []

    def finished(request: Any) -> None:
        sizes = request.sizes()
        seen.append((request.url, sizes["responseHeadersSize"] + sizes["responseBodySize"]))

    page.on("requestfinished", finished)
    return seen


def test_asset_budget_and_second_visit(context: Any, web_url: str) -> None:
    """The first load of / moves at most 60 KB in at most 6 requests; a second visit
    downloads no asset bytes (hashed files are immutable in the cache)."""
    page = context.new_page()
    seen = _transfers(page)
    page.goto(web_url + "/", wait_until="networkidle")
    assert len(seen) <= BUDGET_REQUESTS, seen
    assert sum(size for _, size in seen) <= BUDGET_BYTES, seen
    assets = [url for url, _ in seen if "/static/" in url]
    assert len(assets) == 3  # stylesheet, script, icon

    again = context.new_page()
    repeat = _transfers(again)
    again.goto(web_url + "/", wait_until="networkidle")
    downloaded = [(url, size) for url, size in repeat if "/static/" in url and size > 0]
    assert downloaded == []


def test_direct_link_without_javascript(browser: Any, web_url: str) -> None:
    """With JavaScript off, a results link renders its results and the forms still work:
    search, filters (Apply) and the watchlist."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(web_url + "/?q=matirx")
    assert _hit_titles(page)[0] == "The Matrix"
    page.locator("#hits .hit form.watch button").first.click()
    page.wait_for_selector("#watchlist li")
    assert re.search(r"/\?q=matirx$", page.url)
    page.locator("#q").fill("alien")
    page.locator("#q").press("Enter")
    page.wait_for_url(re.compile(r"q=alien"))
    assert "Alien" in _hit_titles(page)
    page.locator("#filters select[name=sort]").select_option("-votes")
    page.locator("#filters .apply").click()
    page.wait_for_url(re.compile(r"sort=-votes"))
    assert page.locator("#recent li").all_inner_texts() == ["alien", "matirx"]
    context.close()


def test_highlights_count_code_points(context: Any, web_url: str) -> None:
    """The API's code-point offsets land on the right characters after an astral one."""
    page = context.new_page()
    page.goto(web_url + "/")
    marked = page.evaluate(
        "() => { const f = window.reelsearch.markedText('\U0001f3ac Matrix \U0001f3ac Zion',"
        " [[2, 8], [11, 15]]); const d = document.createElement('div'); d.append(f);"
        " return d.innerHTML; }"
    )
    assert marked == "\U0001f3ac <mark>Matrix</mark> \U0001f3ac <mark>Zion</mark>"
