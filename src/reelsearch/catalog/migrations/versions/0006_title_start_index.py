"""An index of PostgreSQL titles by their opening words (docs/decisions/0025).

The relevance tier "the words typed, side by side, at the start of the title"
(``'^' <-> 'of' <-> 'i':*``) is the rarest of a broad query's tiers. When the
first matches in popularity order hold too few of it, the search's one
statement used to ask GIN, which cannot use positions: it fetched and
rechecked every title holding the words anywhere (for "of i", every title with
"of" and a word starting with "i", 100-200 ms at 1 M titles). A title that
opens with those words has a ``norm_title`` that begins with them, one space
apart (``normalize`` writes single spaces), so a range of this B-tree reads
them directly (``search/postgres_page.py``, the ``us`` part). "C" collation:
byte order, so "begins with" is one contiguous range whatever the database's
collation. An import builds it with the other indexes (read back from the
live table, ``catalog/postgres_swap.py``). PostgreSQL only: SQLite's FTS5
answers the same tier from its position lists.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute('CREATE INDEX ix_movies_title_start ON movies ((norm_title COLLATE "C"))')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_movies_title_start")
