"""The first catalog: movies, alternate titles, genres, metadata and the title index.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE movies (
            id INTEGER PRIMARY KEY,             -- stable: kept across re-imports
            source_key TEXT NOT NULL UNIQUE,    -- 'imdb:tt0133093', 'ggplot2movies:32710'
            title TEXT NOT NULL,
            original_title TEXT,
            year INTEGER,
            runtime_min INTEGER,
            rating REAL,
            votes INTEGER NOT NULL DEFAULT 0,
            genres TEXT NOT NULL DEFAULT '',    -- comma-separated, for display
            genre_mask INTEGER NOT NULL DEFAULT 0,  -- bit per genres.bit, for filters/facets
            kind TEXT NOT NULL DEFAULT 'movie',
            norm_title TEXT NOT NULL,           -- search.normalize(title)
            word_key TEXT NOT NULL,             -- its words sorted: equal for any word order
            search_rank INTEGER,                -- 1 = most popular; rowid in title_fts
            import_id INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX ix_movies_search_rank ON movies (search_rank)")
    op.execute("CREATE INDEX ix_movies_word_key ON movies (word_key, search_rank)")
    # Filter and sort columns; search_rank breaks ties so ORDER BY needs no sort step.
    op.execute("CREATE INDEX ix_movies_year ON movies (year, search_rank)")
    op.execute("CREATE INDEX ix_movies_rating ON movies (rating, search_rank)")
    op.execute("CREATE INDEX ix_movies_votes ON movies (votes, search_rank)")
    op.execute("CREATE INDEX ix_movies_kind ON movies (kind, search_rank)")
    op.execute(
        """
        CREATE TABLE alt_titles (
            movie_id INTEGER NOT NULL REFERENCES movies (id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            norm_title TEXT NOT NULL,
            region TEXT,
            language TEXT,
            PRIMARY KEY (movie_id, title)
        ) WITHOUT ROWID
        """
    )
    op.execute("CREATE TABLE genres (bit INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    # Genre -> movies in popularity order: browsing a genre without text reads
    # only that genre's rows, in the order the page needs.
    op.execute(
        """
        CREATE TABLE movie_genres (
            genre_bit INTEGER NOT NULL,
            search_rank INTEGER NOT NULL,
            PRIMARY KEY (genre_bit, search_rank)
        ) WITHOUT ROWID
        """
    )
    op.execute("CREATE TABLE catalog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    op.execute("INSERT INTO catalog_meta (key, value) VALUES ('version', '0')")
    # Contentless: the titles live in movies; the index only maps words to
    # rowids, and rowid = search_rank, so "ORDER BY rowid LIMIT n" walks the
    # matches in popularity order and stops after n.
    op.execute(
        """
        CREATE VIRTUAL TABLE title_fts USING fts5(
            norm_title, content='', columnsize=0,
            tokenize='unicode61 remove_diacritics 0', prefix='1 2 3 4'
        )
        """
    )
    op.execute("CREATE VIRTUAL TABLE title_vocab USING fts5vocab(title_fts, 'row')")


def downgrade() -> None:
    for name in (
        "title_vocab",
        "title_fts",
        "catalog_meta",
        "movie_genres",
        "genres",
        "alt_titles",
        "movies",
    ):
        op.execute(f"DROP TABLE IF EXISTS {name}")
