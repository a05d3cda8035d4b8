"""The page's HTML, rendered on the server: the same markup web/js/results.js builds.

Plain functions from data to escaped strings (every value goes through
``escape``); no template engine for a handful of fragments. The markup
works without JavaScript: the search box is a GET form, filters are a form
with checkboxes, the watchlist buttons are POST forms.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

from reelsearch.http.assets import AssetManifest
from reelsearch.search.engine import SearchResult

SORT_LABELS = {
    "relevance": "Relevance",
    "-votes": "Most voted",
    "-rating": "Best rated",
    "-year": "Newest",
    "year": "Oldest",
}
MIN_RATINGS = ("", "5", "6", "7", "8", "9")
POSTER_WIDTH, POSTER_HEIGHT = 64, 96
# Words left out of a poster's initials: "The Matrix" is "M", not "TM".
_ARTICLES = frozenset({"the", "a", "an", "le", "la", "les", "der", "die", "das", "el"})


@dataclass(frozen=True, slots=True)
class PageState:
    """The search a results URL holds, as the page's forms and links show it."""

    q: str = ""
    genres: tuple[str, ...] = ()
    year_from: str = ""
    year_to: str = ""
    min_rating: str = ""
    sort: str = "relevance"

    def url(self, **changes: Any) -> str:
        """This state's URL ("/?q=..."), with ``changes`` applied; empty values left out."""
        values = {
            "q": self.q,
            "genres": ",".join(self.genres),
            "year_from": self.year_from,
            "year_to": self.year_to,
            "min_rating": self.min_rating,
            "sort": "" if self.sort == "relevance" else self.sort,
        }
        values.update(changes)
        kept = {k: v for k, v in values.items() if v}
        return "/?" + urlencode(kept) if kept else "/"


def marked(text: str, spans: Sequence[Sequence[int]] | None) -> str:
    """``text`` escaped, the [start, end) code-point ``spans`` wrapped in <mark>."""
    out, at = [], 0
    for start, end in spans or ():
        if start < at or end <= start:
            continue  # overlapping or empty: the API never sends them
        out += [escape(text[at:start]), "<mark>", escape(text[start:end]), "</mark>"]
        at = end
    out.append(escape(text[at:]))
    return "".join(out)


def poster_url(hit: Mapping[str, Any]) -> str:
    image = hit.get("image_url")
    return str(image) if image else f"/poster/{int(hit['id'])}.svg"


def poster_svg(movie_id: int, title: str) -> str:
    """A placeholder poster: the title's initials on a colour picked by the id."""
    words = [w for w in title.split() if any(ch.isalnum() for ch in w)]
    significant = [w for w in words if w.lower() not in _ARTICLES] or words
    initials = "".join(next(ch for ch in w if ch.isalnum()) for w in significant[:2]).upper()
    hue = zlib.crc32(str(movie_id).encode()) % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="240" '
        'viewBox="0 0 160 240">'
        f'<rect width="160" height="240" fill="hsl({hue} 42% 36%)"/>'
        f'<rect x="8" y="8" width="144" height="224" fill="none" '
        f'stroke="hsl({hue} 50% 70%)" stroke-width="2"/>'
        '<text x="80" y="142" font-family="system-ui,sans-serif" font-size="60" '
        f'font-weight="700" fill="#fff" text-anchor="middle">{escape(initials or "?")}</text>'
        "</svg>"
    )


def _meta(hit: Mapping[str, Any]) -> str:
    parts = []
    if hit.get("rating") is not None:
        parts.append(f'<span class="rating">★ {hit["rating"]:.1f}</span>')
    if hit.get("votes"):
        parts.append(f'<span class="votes">{hit["votes"]:,} votes</span>')
    if hit.get("genres"):
        parts.append(f'<span class="genres">{escape(" · ".join(hit["genres"]))}</span>')
    return " ".join(parts)


def _year(item: Mapping[str, Any]) -> str:
    return f' <span class="year">({int(item["year"])})</span>' if item.get("year") else ""


def watch_form(movie_id: int, is_watched: bool, back: str) -> str:
    label = "✓ On watchlist" if is_watched else "+ Watchlist"
    remove = '<input type="hidden" name="remove" value="1">' if is_watched else ""
    return (
        f'<form class="watch" method="post" action="/session/watchlist/{movie_id}">'
        f'<input type="hidden" name="next" value="{escape(back)}">{remove}'
        f'<button type="submit" aria-pressed="{str(is_watched).lower()}">{label}</button></form>'
    )


def hit_html(hit: Mapping[str, Any], watched: set[int], back: str) -> str:
    movie_id = int(hit["id"])
    highlights = hit.get("highlights") or {}
    year = _year(hit)
    aka = ""
    if hit.get("matched_title"):
        aka = (
            '<p class="aka">Also known as '
            f"{marked(hit['matched_title'], highlights.get('matched_title'))}</p>"
        )
    return (
        f'<li class="hit" data-id="{movie_id}">'
        f'<img class="poster" src="{escape(poster_url(hit))}" alt="" width="{POSTER_WIDTH}" '
        f'height="{POSTER_HEIGHT}" loading="lazy" decoding="async">'
        '<div class="hit-body"><h3 class="hit-title">'
        f'<a href="/movie/{movie_id}">{marked(hit["title"], highlights.get("title"))}</a>{year}'
        f'</h3>{aka}<p class="meta">{_meta(hit)}</p></div>'
        f"{watch_form(movie_id, movie_id in watched, back)}</li>"
    )


def filters_html(state: PageState, facets: Mapping[str, Mapping[str, int]] | None) -> str:
    """Facets as filters (genre checkboxes, decade links), year range, rating, sort."""
    genre_counts = dict((facets or {}).get("genres", {}))
    for chosen in state.genres:
        genre_counts.setdefault(chosen, 0)
    genres = "".join(
        f'<li><label><input type="checkbox" name="genres" value="{escape(name)}"'
        f"{' checked' if name in state.genres else ''}> {escape(name)} "
        f'<span class="count">{count:,}</span></label></li>'
        for name, count in sorted(genre_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    decades = "".join(
        f'<li><a href="{escape(state.url(year_from=d, year_to=str(int(d) + 9)))}">{d}s</a> '
        f'<span class="count">{count:,}</span></li>'
        for d, count in sorted((facets or {}).get("decade", {}).items())
    )
    sorts = "".join(
        f'<option value="{value}"{" selected" if value == state.sort else ""}>{label}</option>'
        for value, label in SORT_LABELS.items()
    )
    ratings = "".join(
        f'<option value="{r}"{" selected" if r == state.min_rating else ""}>'
        f"{r + '+' if r else 'Any'}</option>"
        for r in MIN_RATINGS
    )
    return (
        '<form id="filters" class="filters" action="/" method="get">'
        f'<input type="hidden" name="q" value="{escape(state.q)}">'
        f'<label>Sort <select name="sort">{sorts}</select></label>'
        f'<label>Rating <select name="min_rating">{ratings}</select></label>'
        '<fieldset class="years"><legend>Years</legend>'
        f'<input name="year_from" inputmode="numeric" size="4" placeholder="from" '
        f'aria-label="From year" value="{escape(state.year_from)}">–'
        f'<input name="year_to" inputmode="numeric" size="4" placeholder="to" '
        f'aria-label="To year" value="{escape(state.year_to)}"></fieldset>'
        f'<fieldset><legend>Genres</legend><ul class="facet" id="facet-genres">{genres}</ul>'
        "</fieldset>"
        f'<fieldset><legend>Decades</legend><ul class="facet" id="facet-decades">{decades}</ul>'
        '</fieldset><button class="apply" type="submit">Apply</button></form>'
    )


def results_html(
    state: PageState, result: SearchResult | None, watched: set[int], error: str | None
) -> str:
    if error:
        return f'<p class="summary error" role="alert">{escape(error)}</p><ol id="hits"></ol>'
    if result is None:
        return '<p class="summary">Type a title: typos are fine.</p><ol id="hits"></ol>'
    back = state.url()
    count = f"{result.total:,}{'' if result.total_is_exact else '+'}"
    noun = "result" if result.total == 1 else "results"
    hits = "".join(hit_html(hit, watched, back) for hit in result.hits)
    more = ""
    if result.next_cursor:
        more = (
            f'<a id="more" class="more" data-cursor="{escape(result.next_cursor)}" '
            f'href="{escape(state.url(cursor=result.next_cursor))}">More results</a>'
        )
    return f'<p class="summary">{count} {noun}</p><ol id="hits">{hits}</ol>{more}'


def mine_html(recent: Iterable[str], watchlist: Iterable[Mapping[str, Any]]) -> str:
    """The visitor's recent searches and watchlist (kept in the server-side session)."""
    recent_items = "".join(
        f'<li><a href="{escape(PageState(q=text).url())}">{escape(text)}</a></li>'
        for text in recent
    )
    watch_items = "".join(
        f'<li data-id="{int(entry["id"])}"><a href="/movie/{int(entry["id"])}">'
        f"{escape(entry['title'])}</a>{_year(entry)}</li>"
        for entry in watchlist
    )
    return (
        '<section><h2>Recent searches</h2><ul id="recent">'
        f"{recent_items}</ul></section>"
        '<section><h2>Watchlist</h2><ul id="watchlist">'
        f"{watch_items}</ul></section>"
    )


def document(
    assets: AssetManifest, *, title: str, main: str, mine: str, q: str = "", status: str = ""
) -> str:
    """The whole page around ``main``; the stylesheet and module script preloaded by the head."""
    css, js, icon = assets.url("app.css"), assets.url("app.js"), assets.url("icon.svg")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{css}">'
        f'<link rel="modulepreload" href="{js}">'
        f'<link rel="icon" href="{icon}" type="image/svg+xml">'
        f'<script type="module" src="{js}"></script></head><body>'
        '<header class="top"><a class="brand" href="/">reelsearch</a>'
        '<form class="search" role="search" action="/" method="get">'
        '<div class="combo"><input id="q" name="q" type="search" autocomplete="off" '
        'spellcheck="false" placeholder="Search movies…" aria-label="Search movies" '
        'role="combobox" aria-autocomplete="list" aria-expanded="false" '
        f'aria-controls="suggestions" value="{escape(q)}">'
        '<ul id="suggestions" role="listbox" aria-label="Suggestions" hidden></ul></div>'
        '<button type="submit">Search</button></form></header>'
        f'<main class="layout{" " + status if status else ""}">{main}'
        f'<aside class="mine" aria-label="Your lists">{mine}</aside></main></body></html>'
    )
