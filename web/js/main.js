// Wiring: the search form, filters, links that change the search, back/forward,
// "more results", and the session's recent searches and watchlist.

function renderMine(mine) {
  fill("recent", mine.recent.map(function (text) {
    return el("li", {}, [el("a", { href: pageUrl({ q: text, genres: [], sort: "relevance" }) },
                            [text])]);
  }));
  fill("watchlist", mine.watchlist.map(function (entry) {
    return el("li", { "data-id": entry.id }, [
      el("a", { href: "/movie/" + entry.id }, [entry.title]),
      entry.year ? el("span", { class: "year" }, [" (" + entry.year + ")"]) : null,
    ]);
  }));
  var watched = mine.watchlist.map(function (entry) { return entry.id; });
  document.querySelectorAll("form.watch").forEach(function (form) {
    var id = Number(form.action.split("/").pop());
    var back = form.elements.next.value;
    form.replaceWith(watchForm(id, watched.indexOf(id) >= 0, back));
  });
}

// Session writes: same-origin fetches (the server checks Origin) answered with the lists.
function saveToSession(method, url, body) {
  return fetch(url, {
    method: method,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  }).then(function (response) {
    if (response.ok) return response.json().then(renderMine);
  });
}

function start() {
  document.documentElement.classList.add("js");
  var input = document.getElementById("q");
  var combobox = setupCombobox(input, document.getElementById("suggestions"));
  var hasResults = Boolean(document.getElementById("results"));

  document.querySelector("form.search").addEventListener("submit", function (event) {
    combobox.close();
    if (!hasResults) return; // a movie page: go to the results page the plain way
    event.preventDefault();
    var current = stateFromUrl(window.location.href);
    var state = { q: input.value, genres: [], year_from: "", year_to: "", min_rating: "",
                  sort: current.sort };
    search(state, "push");
    if (state.q.trim()) saveToSession("POST", "/session/recent", { q: state.q });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form.watch")) return;
    event.preventDefault();
    var isWatched = Boolean(form.elements.remove);
    saveToSession(isWatched ? "DELETE" : "POST", form.action);
  });

  if (hasResults) {
    var filters = document.getElementById("filters");
    var fromFilters = function () {
      var state = stateFromUrl("/?" + new URLSearchParams(new FormData(filters)));
      search(state, "push");
    };
    filters.addEventListener("change", fromFilters);
    filters.addEventListener("submit", function (event) { event.preventDefault(); fromFilters(); });

    document.addEventListener("click", function (event) {
      var link = event.target.closest("a");
      if (!link || event.defaultPrevented || event.button !== 0 ||
          event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      if (link.id === "more") { event.preventDefault(); loadMore(link); return; }
      var url = new URL(link.href);
      if (url.origin !== window.location.origin || url.pathname !== "/") return;
      event.preventDefault();
      search(stateFromUrl(url.href), "push");
    });

    window.addEventListener("popstate", function () {
      search(stateFromUrl(window.location.href), "none");
    });
  }
}

start();
