"""The word index and title postings built in a thread from the titles during a SQLite
import (catalog/word_index_ahead.py, decision 0038): the same bytes as the build from
FTS5's vocabulary, and that build whenever the two vocabularies differ."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import copy_database
from reelsearch.catalog.word_index import store_sqlite_word_index
from reelsearch.catalog.word_index_ahead import (
    PreparedWordIndex,
    WordIndexAhead,
    prepare_word_index,
)
from reelsearch.search.hit_rows import ALL_ROWS_SQL, encode_hit_rows, hit_rows_sidecar_name
from reelsearch.search.postings_store import TITLES_SQL, build_postings, encode_postings
from reelsearch.search.sql import SQLITE
from reelsearch.search.word_store import checksum


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM catalog_meta"))


def _file_checksums(conn: sqlite3.Connection) -> tuple[str, str]:
    meta = _meta(conn)
    return meta["word_index"].split()[1], meta["title_postings"].split()[1]


class _Ahead:
    """A finished ahead build handing back ``prepared`` (the seam ``store`` reads)."""

    def __init__(self, prepared: PreparedWordIndex | None) -> None:
        self.prepared = prepared

    def result(self) -> PreparedWordIndex | None:
        return self.prepared

    def hit_rows(self) -> list[bytes] | None:
        return None  # the store encodes them itself


def test_prepared_index_is_the_stored_one_of_the_sample(sample_db: Path) -> None:
    """Built from the sample's titles alone, the word index and postings have the bytes
    the import stored, and its vocabulary is FTS5's rows exactly."""
    with sqlite3.connect(sample_db) as conn:
        version = int(_meta(conn)["version"])
        prepared = prepare_word_index(conn.execute(TITLES_SQL).fetchall(), version)
        assert conn.execute(SQLITE.vocabulary_sql).fetchall() == prepared.document_counts
        assert prepared.postings is not None
        built = (prepared.digest, checksum(encode_postings(prepared.postings, version)))
        assert _file_checksums(conn) == built
    conn.close()


def test_build_postings_of_rows_in_any_order_is_the_same(sample_db: Path) -> None:
    """build_postings (which the PostgreSQL import calls) gives the same arrays for the
    titles read in reverse rank order as in rank order."""
    with sqlite3.connect(sample_db) as conn:
        version = int(_meta(conn)["version"])
        rows = conn.execute(TITLES_SQL + " ORDER BY search_rank").fetchall()
        prepared = prepare_word_index(rows, version)
        backwards = build_postings(rows[::-1], prepared.arrays, prepared.digest)
    conn.close()
    assert prepared.postings is not None and backwards is not None
    expected = b"".join(encode_postings(prepared.postings, version))
    assert expected == b"".join(encode_postings(backwards, version))


def test_store_uses_the_prepared_index_only_if_its_vocabulary_is_fts5s(
    sample_db: Path, tmp_path: Path
) -> None:
    """A prepared index whose vocabulary differs from FTS5's (one count off) is not used:
    the files stored are the ones built from FTS5's vocabulary, as without it."""
    path = tmp_path / "copy.db"
    copy_database(sample_db, path)
    with sqlite3.connect(path, isolation_level=None) as conn:
        expected = _file_checksums(conn)
        version = int(_meta(conn)["version"]) + 1
        prepared = prepare_word_index(conn.execute(TITLES_SQL).fetchall(), version)
        word, count = prepared.document_counts[0]
        wrong = PreparedWordIndex(
            [(word, count + 1), *prepared.document_counts[1:]],
            prepared.arrays,
            [b"not", b"these"],
            "0" * 32,
            None,
        )
        conn.execute("BEGIN IMMEDIATE")
        store_sqlite_word_index(conn, version, _Ahead(wrong))  # type: ignore[arg-type]
        from_fts5 = _file_checksums(conn)
        store_sqlite_word_index(conn, version, _Ahead(prepared))  # type: ignore[arg-type]
        from_titles = _file_checksums(conn)
        conn.execute("ROLLBACK")
    conn.close()
    # The version's files differ from the sample's stored ones only by the version in
    # their headers: both ways agree with each other, not with the wrong prepared one.
    assert from_fts5 == from_titles
    assert expected != from_fts5
    assert from_fts5[0] != "0" * 32


def test_hit_rows_encoded_ahead_are_the_usual_file(sample_db: Path) -> None:
    """The hit rows file the ahead thread encodes from the rows it read (in the table's
    order) is byte for byte the one encoded from the rows in another order (by rank,
    last first), and the file the import stored beside the sample."""
    with sqlite3.connect(sample_db) as conn:
        version = int(
            conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()[0]
        )
        ahead = WordIndexAhead(conn, version).hit_rows()
        usual = encode_hit_rows(
            conn.execute(f"{ALL_ROWS_SQL} ORDER BY m.search_rank DESC"), version
        )
    assert ahead is not None
    image = b"".join(ahead)
    assert b"".join(usual) == image
    assert (sample_db.parent / hit_rows_sidecar_name(sample_db, version)).read_bytes() == image
