"""A partial index of the titles that spell words letter by letter ("S.W.A.T.").

The search reads typed initials ("swat") as one-letter words side by side
only when some title spells them so: the snapshot of each catalog version
collects those initialisms (search/snapshot.py), reading just the rows this
index holds instead of scanning movies. Both writers rebuild it with the
other indexes of movies.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The same text as search/snapshot.py's INITIALISM_TITLES condition: SQLite
# uses a partial index only for a query whose WHERE repeats its own.
_HAS_LETTER_RUN = (
    "(' ' || norm_title || ' ') LIKE '% _ _ %' OR (' ' || alt_norm_titles || ' ') LIKE '% _ _ %'"
)


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX ix_movies_letter_runs ON movies (search_rank) WHERE {_HAS_LETTER_RUN}"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_movies_letter_runs")
