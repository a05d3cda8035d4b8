// Results: the URL holds the search state; searching renders the same markup the
// server does (http/page_html.py) from the API's JSON, and pushes the state's URL.

var PAGE_SIZE = 20;
var STATE_KEYS = ["q", "genres", "year_from", "year_to", "min_rating", "sort"];
var searchController = null;
var searched = 0; // numbers each search; only the latest may render

function stateFromUrl(url) {
  var params = new URL(url, window.location.href).searchParams;
  var state = { q: params.get("q") || "", genres: [], sort: params.get("sort") || "relevance" };
  params.getAll("genres").forEach(function (value) {
    value.split(",").forEach(function (name) {
      name = name.trim();
      if (name && state.genres.indexOf(name) < 0) state.genres.push(name);
    });
  });
  ["year_from", "year_to", "min_rating"].forEach(function (key) {
    state[key] = (params.get(key) || "").trim();
  });
  return state;
}

function stateParams(state) {
  var params = new URLSearchParams();
  STATE_KEYS.forEach(function (key) {
    var value = key === "genres" ? state.genres.join(",") : state[key];
    if (key === "sort" && value === "relevance") value = "";
    if (value) params.set(key, value);
  });
  return params;
}

function pageUrl(state) {
  var query = stateParams(state).toString();
  return query ? "/?" + query : "/";
}

function isSearch(state) {
  return Boolean(state.q || state.genres.length || state.year_from || state.year_to ||
                 state.min_rating);
}

function apiUrl(state, cursor) {
  var params = stateParams(state);
  params.set("limit", PAGE_SIZE);
  params.set("facets", "genres,decade");
  if (cursor) params.set("cursor", cursor);
  return "/v1/search?" + params.toString();
}

function formatCount(n) { return n.toLocaleString("en-US"); }

function watchForm(id, isWatched, back) {
  return el("form", { class: "watch", method: "post", action: "/session/watchlist/" + id }, [
    el("input", { type: "hidden", name: "next", value: back }),
    isWatched ? el("input", { type: "hidden", name: "remove", value: "1" }) : null,
    el("button", { type: "submit", "aria-pressed": String(isWatched) },
       [isWatched ? "✓ On watchlist" : "+ Watchlist"]),
  ]);
}

function watchedIds() {
  return Array.prototype.map.call(document.querySelectorAll("#watchlist li"), function (item) {
    return Number(item.dataset.id);
  });
}

function hitItem(hit, watched, back) {
  var highlights = hit.highlights || {};
  var title = [el("a", { href: "/movie/" + hit.id }, [markedText(hit.title, highlights.title)])];
  if (hit.year) title.push(" ", el("span", { class: "year" }, ["(" + hit.year + ")"]));
  var meta = [];
  if (hit.rating !== null && hit.rating !== undefined) {
    meta.push(el("span", { class: "rating" }, ["★ " + hit.rating.toFixed(1)]));
  }
  if (hit.votes) meta.push(el("span", { class: "votes" }, [formatCount(hit.votes) + " votes"]));
  if (hit.genres && hit.genres.length) {
    meta.push(el("span", { class: "genres" }, [hit.genres.join(" · ")]));
  }
  var spaced = [];
  meta.forEach(function (part, n) { if (n) spaced.push(" "); spaced.push(part); });
  var body = [el("h3", { class: "hit-title" }, title)];
  if (hit.matched_title) {
    body.push(el("p", { class: "aka" }, [
      "Also known as ", markedText(hit.matched_title, highlights.matched_title),
    ]));
  }
  body.push(el("p", { class: "meta" }, spaced));
  return el("li", { class: "hit", "data-id": hit.id }, [
    el("img", {
      class: "poster", src: hit.image_url || "/poster/" + hit.id + ".svg", alt: "",
      width: 64, height: 96, loading: "lazy", decoding: "async",
    }),
    el("div", { class: "hit-body" }, body),
    watchForm(hit.id, watched.indexOf(hit.id) >= 0, back),
  ]);
}

function renderResults(state, body) {
  var section = document.getElementById("results");
  var watched = watchedIds();
  var back = pageUrl(state);
  var count = formatCount(body.total) + (body.total_is_exact ? "" : "+");
  var summary = el("p", { class: "summary" }, [count + (body.total === 1 ? " result" : " results")]);
  var list = el("ol", { id: "hits" }, body.hits.map(function (hit) {
    return hitItem(hit, watched, back);
  }));
  section.replaceChildren(summary, list);
  if (body.next_cursor) section.append(moreLink(state, body.next_cursor));
}

function moreLink(state, cursor) {
  var params = stateParams(state);
  params.set("cursor", cursor);
  return el("a", { id: "more", class: "more", "data-cursor": cursor, href: "/?" + params }, [
    "More results",
  ]);
}

function renderFilters(state, facets) {
  var form = document.getElementById("filters");
  form.elements.q.value = state.q;
  form.elements.sort.value = state.sort;
  form.elements.min_rating.value = state.min_rating;
  form.elements.year_from.value = state.year_from;
  form.elements.year_to.value = state.year_to;
  var counts = Object.assign({}, (facets && facets.genres) || {});
  state.genres.forEach(function (name) { if (!(name in counts)) counts[name] = 0; });
  var names = Object.keys(counts).sort(function (a, b) {
    return counts[b] - counts[a] || (a < b ? -1 : a > b ? 1 : 0);
  });
  fill("facet-genres", names.map(function (name) {
      return el("li", {}, [el("label", {}, [
        el("input", { type: "checkbox", name: "genres", value: name,
                      checked: state.genres.indexOf(name) >= 0 }),
        " " + name + " ", el("span", { class: "count" }, [formatCount(counts[name])]),
      ])]);
    }));
  var decades = (facets && facets.decade) || {};
  fill("facet-decades", Object.keys(decades).sort().map(function (decade) {
      var range = Object.assign({}, state, {
        year_from: decade, year_to: String(Number(decade) + 9),
      });
      return el("li", {}, [
        el("a", { href: pageUrl(range) }, [decade + "s"]), " ",
        el("span", { class: "count" }, [formatCount(decades[decade])]),
      ]);
    }));
}

function fill(id, nodes) {
  var node = document.getElementById(id);
  node.replaceChildren.apply(node, nodes);
}

function showError(message) {
  var section = document.getElementById("results");
  section.replaceChildren(
    el("p", { class: "summary error", role: "alert" }, [message]), el("ol", { id: "hits" }));
}

function fetchJson(url, signal) {
  return fetch(url, { signal: signal }).then(function (response) {
    return response.json().then(function (body) { return { ok: response.ok, body: body }; });
  });
}

// With genres ticked, each genre's count as if none were (as the server renders it):
// the other genres stay on offer. Null when no genre is ticked.
function genreCounts(state, signal) {
  if (!state.genres.length) return Promise.resolve(null);
  var params = stateParams(Object.assign({}, state, { genres: [] }));
  params.set("limit", "1");
  params.set("fields", "id");
  params.set("facets", "genres");
  return fetchJson("/v1/search?" + params.toString(), signal).then(function (answer) {
    return answer.ok && answer.body.facets ? answer.body.facets.genres : null;
  });
}

// Run the search `state` stands for; history: "push", "replace" or "none".
function search(state, history) {
  if (searchController) searchController.abort();
  searchController = new AbortController();
  var number = ++searched;
  document.getElementById("q").value = state.q;
  if (history === "push") window.history.pushState(state, "", pageUrl(state));
  if (history === "replace") window.history.replaceState(state, "", pageUrl(state));
  document.title = state.q ? state.q + " – reelsearch" : "reelsearch – movie search";
  if (!isSearch(state)) {
    document.querySelector("main").classList.remove("searched");
    renderFilters(state, null);
    document.getElementById("results").replaceChildren(
      el("p", { class: "summary" }, ["Type a title: typos are fine."]), el("ol", { id: "hits" }));
    return Promise.resolve();
  }
  var signal = searchController.signal;
  var section = document.getElementById("results");
  section.setAttribute("aria-busy", "true"); // until the answer to this search is shown
  return Promise.all([fetchJson(apiUrl(state), signal), genreCounts(state, signal)])
    .then(function (answers) {
      var answer = answers[0];
      if (number !== searched) return;
      section.removeAttribute("aria-busy");
      document.querySelector("main").classList.add("searched");
      if (!answer.ok) { showError(answer.body.error.message); return; }
      var facets = answer.body.facets || {};
      if (answers[1]) facets.genres = answers[1];
      renderResults(state, answer.body);
      renderFilters(state, facets);
    })
    .catch(function (error) {
      if (error.name === "AbortError" || number !== searched) return;
      section.removeAttribute("aria-busy");
      showError("The search failed; try again.");
    });
}

function loadMore(link) {
  var state = stateFromUrl(window.location.href);
  link.setAttribute("aria-busy", "true");
  return fetch(apiUrl(state, link.dataset.cursor))
    .then(function (response) { return response.json(); })
    .then(function (body) {
      var list = document.getElementById("hits");
      var watched = watchedIds();
      body.hits.forEach(function (hit) { list.append(hitItem(hit, watched, pageUrl(state))); });
      if (body.next_cursor) link.replaceWith(moreLink(state, body.next_cursor));
      else link.remove();
    });
}
