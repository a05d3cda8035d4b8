"""The word index of a PostgreSQL catalog, stored with it (docs/decisions/0008).

An import builds the vocabulary and typo index (``catalog/word_index.py``) and
writes the file image into this table, in chunks, in the transaction that
swaps the new catalog in. Each host copies it once into a local cache and its
workers map the copy. SQLite keeps the same image in a file beside the
catalog, so the table exists on PostgreSQL only.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE word_index (version BIGINT NOT NULL, part INTEGER NOT NULL, "
        "data BYTEA NOT NULL, PRIMARY KEY (version, part))"
    )
    # Hashes do not compress: store the chunks out of line without trying.
    op.execute("ALTER TABLE word_index ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE word_index")
