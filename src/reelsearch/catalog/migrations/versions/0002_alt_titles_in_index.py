"""Alternate and original titles join the title index: ``movies.alt_norm_titles``.

Each movie's title-index document becomes its normalized title, then its
other normalized titles after the separator token (catalog/titles.py).
Original titles are copied into ``alt_titles``, as every writer now stores
them, and an existing catalog's title index is rebuilt in place: FTS5's
``title_fts`` on SQLite; ``title_tsv`` and ``title_words`` on PostgreSQL,
which also gets ``title_tsvector(norm_title, alt_norm_titles)``, the SQL
twin of catalog/tsvector.py that the import's staging step uses.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

import sqlalchemy as sa
from alembic import op

from reelsearch.catalog.titles import alt_norm_titles_sql, joined_alt_titles
from reelsearch.catalog.tsvector import TITLE_TSVECTOR_FUNCTION
from reelsearch.search.normalize import JOINED_TITLES, normalize

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TITLE_WORDS = """
INSERT INTO title_words (word, docs)
SELECT word, ndoc FROM ts_stat('SELECT title_tsv FROM movies') WHERE word <> '^' ORDER BY word
"""


def upgrade() -> None:
    op.execute("ALTER TABLE movies ADD COLUMN alt_norm_titles TEXT")
    _copy_original_titles()
    if op.get_bind().dialect.name == "postgresql":
        # Not op.execute: SQLAlchemy's text() would read ":1" in the body as a parameter.
        op.get_bind().exec_driver_sql(TITLE_TSVECTOR_FUNCTION)
        op.execute(
            f"""
            UPDATE movies AS m SET alt_norm_titles = x.alt_norm_titles,
                title_tsv = title_tsvector(m.norm_title, x.alt_norm_titles)
            FROM ({alt_norm_titles_sql("alt_titles", "movies")}) AS x
            WHERE m.id = x.id
            """
        )
        op.execute("DELETE FROM title_words")
        op.execute(_TITLE_WORDS)
        return
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT a.movie_id, m.norm_title, a.norm_title FROM alt_titles AS a "
            "JOIN movies AS m ON m.id = a.movie_id ORDER BY a.movie_id"
        )
    ).all()
    joined = []
    for movie_id, group in groupby(rows, itemgetter(0)):
        alternates = list(group)
        value = joined_alt_titles(alternates[0][1], [row[2] for row in alternates])
        joined.append({"id": movie_id, "alts": value})
    if joined:
        bind.execute(sa.text("UPDATE movies SET alt_norm_titles = :alts WHERE id = :id"), joined)
    _rebuild_title_fts(f"norm_title || coalesce('{JOINED_TITLES}' || alt_norm_titles, '')")


def downgrade() -> None:
    """Back to one title per document (original titles stay in ``alt_titles``)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE movies SET title_tsv = title_tsvector(norm_title, NULL) "
            "WHERE alt_norm_titles IS NOT NULL"
        )
        op.execute("DELETE FROM title_words")
        op.execute(_TITLE_WORDS)
        op.execute("DROP FUNCTION title_tsvector(text, text)")
    else:
        _rebuild_title_fts("norm_title")
    op.execute("ALTER TABLE movies DROP COLUMN alt_norm_titles")


def _copy_original_titles() -> None:
    """Store each original title that differs from the title as an alternate title."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, original_title FROM movies "
            "WHERE original_title IS NOT NULL AND original_title <> title"
        )
    ).all()
    if rows:
        bind.execute(
            sa.text(
                "INSERT INTO alt_titles (movie_id, title, norm_title) "
                "VALUES (:id, :title, :norm) ON CONFLICT DO NOTHING"
            ),
            [{"id": id_, "title": title, "norm": normalize(title)} for id_, title in rows],
        )


def _rebuild_title_fts(document: str) -> None:
    op.execute("INSERT INTO title_fts (title_fts) VALUES ('delete-all')")
    op.execute(
        f"INSERT INTO title_fts (rowid, norm_title) SELECT search_rank, {document} "
        "FROM movies WHERE search_rank IS NOT NULL ORDER BY search_rank"
    )
    op.execute("INSERT INTO title_fts (title_fts) VALUES ('optimize')")
