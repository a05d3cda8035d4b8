// reelsearch web page. These files are joined, in the order build_assets.BUNDLES lists,
// into one ES module: they share its private scope and import nothing.
"use strict";

// The API's highlight offsets count Unicode code points; JavaScript strings count
// UTF-16 units, where a character outside the BMP (an emoji, a rare CJK ideograph)
// takes two. utf16Index turns a code-point offset into a string index.
function utf16Index(text, codePoints) {
  var index = 0;
  for (var n = 0; n < codePoints && index < text.length; n++) {
    var unit = text.charCodeAt(index);
    var isPair = unit >= 0xd800 && unit <= 0xdbff && index + 1 < text.length;
    index += isPair ? 2 : 1;
  }
  return index;
}

// A fragment of `text` with the [start, end) code-point spans wrapped in <mark>.
// Built from text nodes, never from HTML strings, so a title cannot inject markup.
function markedText(text, spans) {
  var fragment = document.createDocumentFragment();
  var at = 0;
  (spans || []).forEach(function (span) {
    var start = utf16Index(text, span[0]);
    var end = utf16Index(text, span[1]);
    if (start < at || end <= start) return;
    fragment.append(text.slice(at, start));
    fragment.append(el("mark", {}, [text.slice(start, end)]));
    at = end;
  });
  fragment.append(text.slice(at));
  return fragment;
}

// el("a", {href: "/"}, ["text", node]): an element with attributes and children.
function el(tag, attributes, children) {
  var node = document.createElement(tag);
  Object.keys(attributes || {}).forEach(function (name) {
    var value = attributes[name];
    if (value === true) node.setAttribute(name, "");
    else if (value !== false && value !== null && value !== undefined) {
      node.setAttribute(name, String(value));
    }
  });
  (children || []).forEach(function (child) {
    if (child !== null && child !== undefined) node.append(child);
  });
  return node;
}

// Where the page's own tests can reach the pure helpers (nothing else uses it).
window.reelsearch = { utf16Index: utf16Index, markedText: markedText };
