"""Every movie's hit row of a PostgreSQL catalog, stored with it (docs/decisions/0043).

An import encodes each movie's row as a search's page reads it
(``search/hit_rows.py``) and writes the file image into this table, in chunks,
in the transaction that swaps the new catalog in, as it does the title
postings (migration 0007). Each host copies it once into the word index's
local cache and its workers map the copy: a page the postings answer reads
no row from the server. SQLite keeps the same image in a file beside the
catalog (decision 0042), so the table exists on PostgreSQL only.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE hit_rows (version BIGINT NOT NULL, part INTEGER NOT NULL, "
        "data BYTEA NOT NULL, PRIMARY KEY (version, part))"
    )
    # Marshalled rows compress a little, at a cost per import and per host's copy:
    # stored out of line as they are, like the postings.
    op.execute("ALTER TABLE hit_rows ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE hit_rows")
