"""Compare what two SQLite imports wrote, table by table: say which tables differ.

    python bench/sqlite_catalog_compare.py A.db B.db

Every table's rows are hashed in primary-key order, but for what an import of the
same files may write differently on each run: ``movies.updated_at`` and
``catalog_meta``'s ``imported_at`` and timing rows (the clock), and, in the title
index's shadow tables, the number of its one segment (FTS5 numbers a segment by the
first number free when it is written, which depends on how many were merged before:
decision 0038). Blocks of ``title_fts_data`` are compared with the segment number
taken out of their row ids; its structure record (id 10), which holds that number and
a write counter, is left out. The word index and title postings files are compared by
the checksums ``catalog_meta`` names.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys

# FTS5 row id of a segment page: segid << 37 | height << 31 | page (fts5_index.c).
_SEGMENT_SHIFT = 37
_STRUCTURE_ROWID = 10
_CLOCK_META = ("imported_at",)


def table_digests(path: str) -> dict[str, tuple[int, str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'"
        )
    ]
    digests = {}
    for table in tables:
        columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
        kept = [c for c in columns if c != "updated_at"]
        order = ", ".join(f'"{c}"' for c in kept)
        query = f'SELECT {order} FROM "{table}" ORDER BY {order}'
        if table == "title_fts_idx":
            query = "SELECT term, pgno FROM title_fts_idx ORDER BY term"
        digest = hashlib.sha1()
        count = 0
        for row in conn.execute(query):
            if table == "catalog_meta" and (row[0] in _CLOCK_META or "seconds" in row[0]):
                continue
            if table == "title_fts_data":
                rowid, block = row
                if rowid == _STRUCTURE_ROWID:
                    continue
                if rowid > _STRUCTURE_ROWID:
                    row = (rowid & ((1 << _SEGMENT_SHIFT) - 1), block)
            digest.update(repr(row).encode())
            count += 1
        digests[table] = (count, digest.hexdigest())
    conn.close()
    return digests


def main() -> None:
    first, second = (table_digests(path) for path in sys.argv[1:3])
    differ = 0
    for table in sorted(first.keys() | second.keys()):
        same = first.get(table) == second.get(table)
        differ += not same
        print(f"{'same' if same else 'DIFFERENT':9} {table} {first.get(table)} {second.get(table)}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
