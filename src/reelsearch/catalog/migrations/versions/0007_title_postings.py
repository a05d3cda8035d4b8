"""The title postings of a PostgreSQL catalog, stored with it (docs/decisions/0037).

An import builds each word's titles as rank arrays, and each title's document
(``search/postings_store.py``), numbered by the word index it stores
(migration 0004), and writes the file image into this table, in chunks, in
the transaction that swaps the new catalog in. Each host copies it once into
the word index's local cache and its workers map the copy. SQLite keeps the
same image in a file beside the catalog (decision 0033), so the table exists
on PostgreSQL only.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE title_postings (version BIGINT NOT NULL, part INTEGER NOT NULL, "
        "data BYTEA NOT NULL, PRIMARY KEY (version, part))"
    )
    # Rank arrays and UTF-8 titles compress a little, at a cost per import and per
    # host's copy: stored out of line as they are, like the word index.
    op.execute("ALTER TABLE title_postings ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE title_postings")
