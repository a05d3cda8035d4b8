"""Staging copies of the catalog tables, built like the live ones and swapped in.

An import fills ``<table>_staging`` beside each live table. This module gives
the staging tables the live tables' indexes and constraints (read back from
the catalog, so they always match the migrations), then, in one message to
the server, locks the live tables, drops them, renames the staging ones and
their indexes into place and re-grants privileges: the locks are held for the
server's catalog updates only, and readers see the old tables or the new.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from reelsearch.errors import ImportFailed

SWAPPED_TABLES = ("movies", "alt_titles", "movie_genres", "title_words")
STAGING = "_staging"

# The live tables' indexes and constraints, to build the same on the staging copies.
_INDEXES = """
SELECT i.indexname, i.indexdef
FROM pg_indexes AS i
WHERE i.schemaname = current_schema() AND i.tablename = %s
  AND NOT EXISTS (SELECT FROM pg_constraint AS c
                  WHERE c.conrelid = %s::regclass AND c.conname = i.indexname)
ORDER BY i.indexname
"""
_CONSTRAINTS = """
SELECT conname, contype, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f', 'x')
ORDER BY contype <> 'p', contype = 'f', conname
"""
_INDEX_DEF = re.compile(
    r"^CREATE (?P<unique>UNIQUE )?INDEX (?P<name>\S+) ON (?P<table>\S+) (?P<rest>USING .+)$"
)
_REFERENCES = re.compile(r"\bREFERENCES (?P<table>[\w.\"]+)\(")


def sequence_of(conn: psycopg.Connection[Any], table: str) -> sql.Composable:
    """The identity sequence of ``table``.id, as SQL (schema-qualified, quoted)."""
    row = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
    assert row is not None and row[0], f"{table}.id is an identity column"
    return sql.SQL(row[0])


def build_staging_indexes(
    conn: psycopg.Connection[Any], tables: Sequence[str] = SWAPPED_TABLES
) -> list[sql.Composed]:
    """Build the live tables' indexes and constraints on the staging copies of ``tables``.

    Returns the statements that give them their live names after the swap.
    A foreign key is added with its table, so the table it references must
    be among ``tables`` or done before.
    """
    renames: list[sql.Composed] = []
    foreign_keys: list[sql.Composed] = []
    for table in tables:
        staging = table + STAGING
        for name, kind, definition in conn.execute(_CONSTRAINTS, (table,)).fetchall():
            if kind == "f":
                definition = _REFERENCES.sub(
                    lambda m: f"REFERENCES {_staging_name(m['table'])}(", definition
                )
            add = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(staging), sql.Identifier(name + STAGING), sql.SQL(definition)
            )
            if kind == "f":
                foreign_keys.append(add)  # once every referenced key exists
            else:
                conn.execute(add)
            renames.append(
                sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                    sql.Identifier(table), sql.Identifier(name + STAGING), sql.Identifier(name)
                )
            )
        for name, definition in conn.execute(_INDEXES, (table, table)).fetchall():
            match = _INDEX_DEF.match(definition)
            if match is None:
                raise ImportFailed(f"cannot rebuild index {name}: {definition}")
            conn.execute(
                sql.SQL("CREATE {}INDEX {} ON {} {}").format(
                    sql.SQL(match["unique"] or ""),
                    sql.Identifier(name + STAGING),
                    sql.Identifier(staging),
                    sql.SQL(match["rest"]),
                )
            )
            renames.append(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(name + STAGING), sql.Identifier(name)
                )
            )
    for add in foreign_keys:
        conn.execute(add)
    return renames


def swap_in(
    conn: psycopg.Connection[Any],
    renames: list[sql.Composed],
    *,
    lock_timeout: float,
    patience: float,
) -> None:
    """Drop the live tables and rename the staging ones into place, then commit.

    Each attempt waits at most ``lock_timeout`` s for the tables (below
    PostgreSQL's deadlock_timeout, so in a lock cycle the import backs off,
    not the search), and attempts go on for ``patience`` s.
    """
    grants = _grants(conn)
    sequence = sequence_of(conn, "movies").as_string(conn)
    live = sql.SQL(", ").join(sql.Identifier(t) for t in SWAPPED_TABLES)
    statements: list[sql.Composed] = [
        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(live),
        sql.SQL("DROP TABLE {}").format(live),
        *(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(t + STAGING), sql.Identifier(t)
            )
            for t in SWAPPED_TABLES
        ),
        *renames,
        sql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(
            sequence_of(conn, "movies_staging"), sql.SQL(sequence.rpartition(".")[2])
        ),
        *grants,
    ]
    # One round trip from LOCK to RELEASE: the locks are held for the server's
    # catalog updates only (about 10 ms), not for network turns.
    swap = sql.SQL(";\n").join(
        [
            sql.SQL("SAVEPOINT reelsearch_swap"),
            sql.SQL("SET LOCAL lock_timeout = {}").format(
                sql.Literal(f"{int(lock_timeout * 1000)}ms")
            ),
            *statements,
            sql.SQL("RELEASE SAVEPOINT reelsearch_swap"),
        ]
    )
    deadline = time.monotonic() + patience
    attempt = 0
    while True:
        attempt += 1
        try:
            conn.execute(swap)
        except psycopg.errors.LockNotAvailable:
            conn.execute("ROLLBACK TO SAVEPOINT reelsearch_swap")
            if time.monotonic() >= deadline:
                raise ImportFailed(
                    f"searches held the catalog tables for {patience:.0f} s "
                    f"({attempt} attempts to swap the new ones in)"
                ) from None
            # Let the queued searches through before asking again.
            time.sleep(min(0.05 * attempt, 1.0))
            continue
        conn.commit()
        return


def _grants(conn: psycopg.Connection[Any]) -> list[sql.Composed]:
    """GRANTs that give the new tables the live tables' privileges (e.g. a search role)."""
    rows = conn.execute(
        """
        SELECT c.relname, a.privilege_type, coalesce(r.rolname, 'PUBLIC')
        FROM pg_class AS c, aclexplode(c.relacl) AS a
        LEFT JOIN pg_roles AS r ON r.oid = a.grantee
        WHERE c.oid = ANY(%s::regclass[]) AND a.grantee <> c.relowner
        """,
        (list(SWAPPED_TABLES),),
    ).fetchall()
    return [
        sql.SQL("GRANT {} ON {} TO {}").format(
            sql.SQL(privilege),
            sql.Identifier(table),
            sql.SQL("PUBLIC") if role == "PUBLIC" else sql.Identifier(role),
        )
        for table, privilege, role in rows
    ]


def _staging_name(table: str) -> str:
    bare = table.rpartition(".")[2].strip('"')
    return bare + STAGING if bare in SWAPPED_TABLES else table
