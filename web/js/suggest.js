// The search box as an ARIA combobox: suggestions at each keystroke (debounced), the
// previous request aborted, answers never shown out of order; arrows, Enter, Escape.

var SUGGEST_DELAY_MS = 60;
var SUGGEST_LIMIT = 8;

function setupCombobox(input, list) {
  var timer = null;
  var controller = null;
  var asked = 0; // numbers each request; only the latest may render
  var active = -1;

  function options() {
    return Array.prototype.slice.call(list.querySelectorAll("[role=option]"));
  }

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    var all = options();
    if (!all.length) return;
    active = (index + all.length) % all.length;
    all.forEach(function (option, n) {
      option.setAttribute("aria-selected", n === active ? "true" : "false");
    });
    input.setAttribute("aria-activedescendant", all[active].id);
  }

  function show(suggestions, typed) {
    list.replaceChildren();
    suggestions.forEach(function (item, n) {
      var label = [markedText(item.title, item.highlights && item.highlights.title)];
      if (item.year) label.push(el("span", { class: "year" }, [" (" + item.year + ")"]));
      var option = el("li", {
        role: "option", id: "suggestion-" + n, "aria-selected": "false",
        "data-href": "/movie/" + item.id,
      }, label);
      list.append(option);
    });
    active = -1;
    input.removeAttribute("aria-activedescendant");
    var isOpen = suggestions.length > 0 && input.value === typed;
    list.hidden = !isOpen;
    input.setAttribute("aria-expanded", isOpen ? "true" : "false");
  }

  function ask() {
    var typed = input.value;
    if (controller) controller.abort();
    if (!typed.trim()) { close(); return; }
    controller = new AbortController();
    var number = ++asked;
    var url = "/v1/autocomplete?" + new URLSearchParams({ q: typed, limit: SUGGEST_LIMIT });
    fetch(url, { signal: controller.signal })
      .then(function (response) { return response.ok ? response.json() : { suggestions: [] }; })
      .then(function (body) { if (number === asked) show(body.suggestions || [], typed); })
      .catch(function (error) { if (error.name !== "AbortError") close(); });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, SUGGEST_DELAY_MS);
  });
  input.addEventListener("keydown", function (event) {
    var isOpen = !list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!isOpen) { ask(); return; }
      event.preventDefault();
      highlight(active + (event.key === "ArrowDown" ? 1 : -1));
    } else if (event.key === "Escape") {
      if (isOpen) { event.preventDefault(); close(); }
    } else if (event.key === "Enter") {
      clearTimeout(timer);
      asked++; // an answer still on its way must not reopen the list
      if (isOpen && active >= 0) {
        event.preventDefault();
        window.location.assign(options()[active].dataset.href);
      }
      close();
    }
  });
  // mousedown, not click: it comes before the input's blur closes the list.
  list.addEventListener("mousedown", function (event) {
    var option = event.target.closest("[role=option]");
    if (option) { event.preventDefault(); window.location.assign(option.dataset.href); }
  });
  input.addEventListener("blur", function () { setTimeout(close, 100); });
  return { close: close };
}
