"""Search: query parsing, the engine interface and its SQLite and PostgreSQL engines.

The names callers need; the parts (plan, matching, pages, readers, ...) are
importable from their modules for tests and benchmarks.
"""

from reelsearch.search.backends import open_blocking_engine, open_search_engine
from reelsearch.search.deadline import Deadline
from reelsearch.search.engine import BlockingSearchEngine, Hit, SearchEngine, SearchResult
from reelsearch.search.normalize import normalize
from reelsearch.search.query import SearchQuery, parse_autocomplete, parse_search

__all__ = [
    "BlockingSearchEngine",
    "Deadline",
    "Hit",
    "SearchEngine",
    "SearchQuery",
    "SearchResult",
    "normalize",
    "open_blocking_engine",
    "open_search_engine",
    "parse_autocomplete",
    "parse_search",
]
