"""The columns a search reads about each movie, and where each sits in a row.

Apart from ``rows.py`` (which turns rows into hits and pages) so that what
only needs the row's shape, such as the hit rows stored at import
(``hit_rows.py``, loaded with the catalog snapshot), imports nothing of the
ranking that ``rows.py`` brings.
"""

from __future__ import annotations

# The hit's fields, then what ranking, highlights and explain read about it.
COLUMN_LIST = (
    "m.id", "m.title", "m.year", "m.rating", "m.votes", "m.genres", "m.runtime_min", "m.kind",
    "m.norm_title", "m.alt_norm_titles", "m.search_rank", "m.source_key",
)  # fmt: skip
COLUMNS = ", ".join(COLUMN_LIST)
NORM_TITLE, ALT_NORM_TITLES, SEARCH_RANK, SOURCE_KEY = 8, 9, 10, 11
# What filters test (search/filter_columns.py).
YEAR, RATING, VOTES, KIND = 2, 3, 4, 7
