"""Which of the search engine's hot modules run compiled in this install.

A regular wheel (``pip install .``) compiles them with mypyc (hatch_build.py,
docs/decisions/0036-compiled-search-modules.md); an editable install runs their
sources. Both behave the same and pass the same tests; the compiled ones cost
less CPU per search. ``reelsearch serve`` says which it runs, so a measurement
can say what it measured.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

# The modules the wheel compiles: pyproject.toml's list for the build hook, as module
# names (tests/test_compiled.py holds the two lists equal).
COMPILABLE = (
    "reelsearch.search.annotate",
    "reelsearch.search.as_typed",
    "reelsearch.search.assessment",
    "reelsearch.search.counting",
    "reelsearch.search.filters",
    "reelsearch.search.highlight",
    "reelsearch.search.matching",
    "reelsearch.search.normalize",
    "reelsearch.search.pages",
    "reelsearch.search.phrases",
    "reelsearch.search.plan",
    "reelsearch.search.postings",
    "reelsearch.search.query",
    "reelsearch.search.rank_sets",
    "reelsearch.search.readers",
    "reelsearch.search.rows",
    "reelsearch.search.sql",
    "reelsearch.search.syntax",
    "reelsearch.search.typos",
)


def compiled_modules() -> list[str]:
    """The modules of ``COMPILABLE`` that Python loaded from a C extension."""
    suffixes = tuple(EXTENSION_SUFFIXES)
    return [
        name
        for name in COMPILABLE
        if (importlib.import_module(name).__file__ or "").endswith(suffixes)
    ]


def describe() -> str:
    """One phrase for logs: how many of the hot modules run compiled."""
    compiled = len(compiled_modules())
    if compiled == 0:
        return "search modules run as Python source (an editable or pure-Python install)"
    return f"{compiled} of {len(COMPILABLE)} search modules compiled with mypyc"
