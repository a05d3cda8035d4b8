"""The initialisms a catalog's titles spell ("S.W.A.T." -> "swat"), read once per version.

Typed initials are searched as one-letter words side by side only when some
title spells them so; the snapshot finds those titles through the partial
index of catalog migration 0003, never by scanning movies (the PostgreSQL
plan is checked in test_explain.py).
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3

from reelsearch.config import Settings
from reelsearch.search.snapshot import INITIALISM_TITLES_SQL, CatalogSnapshot, initialisms_of


def test_runs_of_one_letter_words_are_joined() -> None:
    titles = ["s w a t", "g i jane", "pink s w a t", "a b c d e f", "x \ue000 y", "a", "m a s h 2"]
    assert ["gi", "mash", "swat"] == initialisms_of(titles)


def test_a_run_is_a_whole_word_sequence() -> None:
    """ "ab c" holds no run: "ab" is a word of two letters, not two initials."""
    assert [] == initialisms_of(["ab c", "x yz", "q"])


def test_the_sample_snapshot_holds_its_initialisms(sample_settings: Settings) -> None:
    with sqlite3.connect(sample_settings.sqlite_path) as conn:
        snapshot = CatalogSnapshot.load(conn)
    conn.close()
    assert {"swat", "gi", "la", "et", "doa"} <= snapshot.vocabulary.initialisms
    assert "love" not in snapshot.vocabulary.initialisms


def test_sqlite_reads_them_through_the_partial_index(sample_settings: Settings) -> None:
    with sqlite3.connect(sample_settings.sqlite_path) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {INITIALISM_TITLES_SQL}").fetchall()
    conn.close()
    assert ["SCAN movies USING INDEX ix_movies_letter_runs"] == [row[3] for row in plan]
