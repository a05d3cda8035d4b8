"""Change records and the word overlay of catalog writes (docs/decisions/0014).

A write through the documents API changes a few movies and bumps the catalog
version. Two tables let every reader follow it without a rebuild:

- ``catalog_changes``: one row per movie a write version changed, with the
  words of its titles before and after (space-separated, sorted), so a
  result cache can drop exactly the answers those words could be in
  (``catalog/changes.py``); pruned to the newest rows;
- ``word_overlay``: per word, the titles added (or, negative, removed)
  since the stored word index was built. A worker maps the stored index and
  merges these few rows into its vocabulary and typo index instead of
  rebuilding them per write. An import rebuilds the index and empties both.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    integer = "BIGINT" if postgresql else "INTEGER"
    op.execute(
        f"""
        CREATE TABLE catalog_changes (
            version {integer} NOT NULL,
            movie_id {integer} NOT NULL,
            words_before TEXT NOT NULL,
            words_after TEXT NOT NULL,
            -- its genres and decade ("g=Drama", "d=1990", tab-separated): readers move
            -- the catalog-wide facets by these instead of recounting a million rows
            facets_before TEXT NOT NULL DEFAULT '',
            facets_after TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (version, movie_id)
        )
        """
    )
    op.execute("CREATE TABLE word_overlay (word TEXT PRIMARY KEY, docs INTEGER NOT NULL)")
    # Versions after this one have complete change records: none before the migration.
    op.execute(
        "INSERT INTO catalog_meta (key, value) "
        "SELECT 'changes_from', value FROM catalog_meta WHERE key = 'version'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE word_overlay")
    op.execute("DROP TABLE catalog_changes")
    op.execute("DELETE FROM catalog_meta WHERE key = 'changes_from'")
