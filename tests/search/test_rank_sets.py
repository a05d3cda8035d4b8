"""The title postings and the match sets built from them (search/postings.py,
search/rank_sets.py) answer exactly what FTS5 answers to the same expressions."""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from reelsearch.config import Settings
from reelsearch.search import rank_sets
from reelsearch.search.filters import Filters
from reelsearch.search.postings import POSTINGS_MAX_MOVIES, intersect, union, without
from reelsearch.search.postings_store import TITLES_SQL, build_postings, encode_postings
from reelsearch.search.query import parse_search
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.sql import SQLITE
from reelsearch.search.tiered import TieredSearch
from reelsearch.search.word_store import checksum

# Phrases, prefixes short and long, split and joined words, synonyms, stop words,
# exclusions, typos, initialisms, digits, accents, words no title holds.
QUERIES = [
    "the matrix", "star wars", "braindead", "brain dead", "mi", "spider man", "spiderman",
    "night p", "lord of the ri", "the mat", "matrix -reloaded", "la pete", "gladiatr",
    "swat", "s w a t", "dr strangelove", "18 5 episode", "amelie", "a mar", "the barin",
    "ngiht", "godfather part", "the", "love", "star -wars -trek", "\"the lord\"", "x",
    "almost angel", "casablanca", "zzzzqx", "2001 a space", "monty python", "the good the bad",
    "harry potter and the", "alien", "aliens", "jaws 2", "toy story", "back to the fut",
    "edward ii", "chained heat ii", "ii", "rocky ii -iii", "i i", "the godfather part ii",
    "spider man 2", "star wars -episode", "the lord of the ri",
]  # fmt: skip


def _fts5(conn: sqlite3.Connection, expression: str) -> list[int]:
    rows = conn.execute(
        "SELECT rowid FROM title_fts WHERE title_fts MATCH ? ORDER BY rowid", (expression,)
    )
    return [rank for (rank,) in rows]


@pytest.fixture(scope="module")
def loaded(sample_db: Path) -> tuple[sqlite3.Connection, CatalogSnapshot]:
    conn = sqlite3.connect(f"file:{sample_db}?mode=ro", uri=True)
    return conn, CatalogSnapshot.load(conn, postings_max_movies=POSTINGS_MAX_MOVIES)


def test_each_word_and_prefix_lists_the_titles_fts5_finds(
    loaded: tuple[sqlite3.Connection, CatalogSnapshot],
) -> None:
    """A word's ranks (every 40th word of the catalog, in order) and a short prefix's
    (FTS5's "p"*) are FTS5's rowids for it, ascending."""
    conn, snapshot = loaded
    postings = snapshot.postings
    assert postings is not None
    vocabulary = conn.execute("SELECT term FROM title_vocab WHERE term != char(57344)")
    words = [word for (word,) in vocabulary]
    for word in words[::40]:
        assert _fts5(conn, '"' + word + '"') == postings.word(word).tolist(), word
    for prefix in ["a", "t", "ma", "mat", "star", "zz", "ö"]:
        found = postings.prefix(prefix)
        assert found is None or _fts5(conn, f'"{prefix}"*') == found.tolist(), prefix
    assert postings.prefix("mat") is not None
    assert postings.prefix("t") is None  # more postings than MAX_PREFIX_POSTINGS
    assert [] == postings.word("zzzzqx").tolist()


def test_match_sets_equal_fts5_answers(
    loaded: tuple[sqlite3.Connection, CatalogSnapshot], sample_settings: Settings
) -> None:
    """For every query's plan (and the plan of each of its first words), the plain,
    with-typos and strict sets are FTS5's rowids for the same expressions; only a
    very broad part ("t"* in "s w a t") leaves a search to FTS5."""
    conn, snapshot = loaded
    tiered = TieredSearch(sample_settings, SQLITE)
    left_to_fts5 = []
    checked = 0
    for text in QUERIES:
        query = parse_search([("q", text)])
        for n in range(1, len(query.words) + 1):
            match = tiered.pages.match(snapshot, tiered.plan(snapshot, query.first_words(n)))
            sets = tiered.pages.rank_sets(snapshot, match, Filters("", ()))
            if sets is None:
                left_to_fts5.append(" ".join(query.words[:n]))
                continue
            checked += 1
            assert _fts5(conn, match.plain) == sets.plain.tolist(), text
            if match.with_typos is not None:
                assert _fts5(conn, match.with_typos) == sets.with_typos.tolist(), text
            if match.strict is not None and sets.strict is not None:
                assert _fts5(conn, match.strict) == sets.strict.tolist(), text
    assert ["s w a t"] == left_to_fts5  # "t"*: too many postings to merge
    assert checked > 60


def test_filters_leave_the_search_to_fts5(
    loaded: tuple[sqlite3.Connection, CatalogSnapshot], sample_settings: Settings
) -> None:
    """A filter reads the movies' columns: no sets, the statements answer."""
    _, snapshot = loaded
    tiered = TieredSearch(sample_settings, SQLITE)
    match = tiered.pages.match(snapshot, tiered.plan(snapshot, parse_search([("q", "matrix")])))
    year = Filters(" AND m.year = ?", (1999,))
    assert None is tiered.pages.rank_sets(snapshot, match, year)
    assert None is not tiered.pages.rank_sets(snapshot, match, Filters("", ()))


def test_postings_refused_when_counts_differ_from_the_title_index(
    loaded: tuple[sqlite3.Connection, CatalogSnapshot],
) -> None:
    """Titles that split into other words than FTS5's (here: one title's text changed
    under it: a word the index lacks, or one word fewer) give no postings, so FTS5
    alone answers; the rows as stored rebuild the stored file byte for byte."""
    conn, snapshot = loaded
    words = snapshot.vocabulary.arrays
    digest = str(snapshot.stored_index).partition(" ")[2]
    rows = conn.execute(TITLES_SQL).fetchall()
    rebuilt = build_postings(rows, words, digest)
    assert rebuilt is not None
    assert str(snapshot.stored_postings).partition(" ")[2] == checksum(
        encode_postings(rebuilt, snapshot.version)
    )
    added = [(rows[0][0], rows[0][1] + " zorblaxian", rows[0][2]), *rows[1:]]
    assert None is build_postings(added, words, digest)
    at = next(i for i, row in enumerate(rows) if len(set(row[1].split())) > 1 and not row[2])
    fewer = [*rows[:at], (rows[at][0], rows[at][1].split()[0], None), *rows[at + 1 :]]
    assert None is build_postings(fewer, words, digest)


def test_set_operations() -> None:
    """Intersection, union and difference of sorted rank arrays, empty ones included."""
    a = np.array([1, 3, 5, 7], dtype=np.int32)
    b = np.array([3, 4, 5, 9], dtype=np.int32)
    empty = np.zeros(0, dtype=np.int32)
    assert [3, 5] == intersect([a, b]).tolist()
    assert [] == intersect([a, empty]).tolist()
    assert [1, 3, 4, 5, 7, 9] == union([a, b, empty]).tolist()
    assert [1, 7] == without(a, b).tolist()
    assert [1, 3, 5, 7] == without(a, empty).tolist()


def test_phrase_work_is_bounded_per_search(
    loaded: tuple[sqlite3.Connection, CatalogSnapshot],
    sample_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The titles tested for phrases, all of a search's phrases together, are capped
    (no deadline check runs in the sets): past the cap the search is FTS5's."""
    _, snapshot = loaded
    tiered = TieredSearch(sample_settings, SQLITE)
    plan = tiered.plan(snapshot, parse_search([("q", "spiderman")]))  # also "spider man"
    match = tiered.pages.match(snapshot, plan)
    sets = tiered.pages.rank_sets(snapshot, match, Filters("", ()))
    assert sets is not None and len(sets.plain) > 0
    monkeypatch.setattr(rank_sets, "MAX_PHRASE_CANDIDATES", 1)
    assert None is tiered.pages.rank_sets(snapshot, match, Filters("", ()))


def test_phrases_are_tested_among_the_other_words_titles(
    loaded: tuple[sqlite3.Connection, CatalogSnapshot],
    sample_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slot's phrase is tested only on titles that also hold the other slots' words:
    "i i", an alternative of "ii", is every title with an "i" alone (hundreds in the
    sample), but with "edward" only a handful are candidates, well under a cap of 20."""
    conn, snapshot = loaded
    tiered = TieredSearch(sample_settings, SQLITE)
    plan = tiered.plan(snapshot, parse_search([("q", "Edward II")]))
    assert ("i", "i") in [alt.tokens for alt in plan.slots[1].alternatives]
    match = tiered.pages.match(snapshot, plan)
    assert len(_fts5(conn, '"i"')) > 500
    monkeypatch.setattr(rank_sets, "MAX_PHRASE_CANDIDATES", 20)
    sets = tiered.pages.rank_sets(snapshot, match, Filters("", ()))
    assert sets is not None
    assert _fts5(conn, match.plain) == sets.plain.tolist()
    assert _fts5(conn, match.with_typos) == sets.with_typos.tolist()
    titles = [snapshot.postings.titles(rank)[0] for rank in sets.plain.tolist()]
    assert ["edward ii"] == titles


def test_the_typo_set_never_runs_out_of_the_phrase_budget(
    loaded: tuple[sqlite3.Connection, CatalogSnapshot],
    sample_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the phrase budget, a search either gets no sets (FTS5 answers) or gets
    sets whose typo set is found without running out of it. In '"of the" nihgt' no title
    holds "nihgt", so the plain set's phrase has no candidate; the typo set's ("night")
    has dozens: they are tested once, within the typo set's bound, when the sets are
    made, not after the search took them (an error past its fallback to FTS5: a 500)."""
    conn, snapshot = loaded
    tiered = TieredSearch(sample_settings, SQLITE)
    plan = tiered.plan(snapshot, parse_search([("q", '"of the" nihgt')]))
    match = tiered.pages.match(snapshot, plan)
    assert match.with_typos is not None
    outcomes = set()
    for budget in range(0, 200, 3):
        monkeypatch.setattr(rank_sets, "MAX_PHRASE_CANDIDATES", budget)
        sets = tiered.pages.rank_sets(snapshot, match, Filters("", ()))
        outcomes.add(sets is not None)
        if sets is not None:
            assert [] == sets.plain.tolist()
            assert _fts5(conn, match.with_typos) == sets.with_typos.tolist(), budget
    assert {False, True} == outcomes  # small budgets leave it to FTS5, larger ones not
