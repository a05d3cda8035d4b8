"""The word index built at import, stored with the catalog and mapped by every worker."""

from __future__ import annotations

import mmap
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from rapidfuzz.distance import OSA

from reelsearch.catalog.importers.imdb import import_imdb
from reelsearch.catalog.word_index import build_postgres_word_arrays
from reelsearch.config import Settings
from reelsearch.search import snapshot as snapshot_module
from reelsearch.search.backends import open_blocking_engine
from reelsearch.search.delete_hashes import (
    code_points,
    delete_hashes,
    deletes,
    word_delete_hashes,
)
from reelsearch.search.snapshot import CatalogSnapshot
from reelsearch.search.stored_words import cache_name
from reelsearch.search.typos import TypoIndex, allowed_typos, is_indexed, typos_for_length
from reelsearch.search.vocabulary import Vocabulary
from reelsearch.search.word_store import (
    build_word_arrays,
    checksum,
    encode,
    file_checksum,
    write_atomically,
)

Builds = list[int]


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    """Counts the in-memory builds of the word arrays a snapshot makes."""
    calls: Builds = []

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return build_word_arrays(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot_module, "build_word_arrays", counting)
    return calls


def _load(path: Path) -> CatalogSnapshot:
    conn = sqlite3.connect(path)
    try:
        conn.execute("BEGIN")
        return CatalogSnapshot.load(conn)
    finally:
        conn.close()


def _meta(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM catalog_meta WHERE key = 'word_index'").fetchone()
    return str(row[0])


def _in_memory(path: Path) -> CatalogSnapshot:
    """The snapshot as before stored indexes: built from the catalog's rows."""
    conn = sqlite3.connect(path)
    try:
        words = conn.execute("SELECT term, doc FROM title_vocab WHERE term != char(57344)")
        vocabulary = words.fetchall()
        titles = conn.execute(snapshot_module.INITIALISM_TITLES_SQL).fetchall()
    finally:
        conn.close()
    initialisms = snapshot_module.initialisms_of(t for row in titles for t in row if t)
    arrays = build_word_arrays(vocabulary, initialisms)
    mapped = _load(path)
    return CatalogSnapshot.build(
        snapshot_module.CatalogFacts(
            version=mapped.version, movie_count=mapped.movie_count, vocabulary=[],
            initialisms=[], genres=[], genre_counts=[], decades=[], kinds=[], words=arrays,
        )
    )  # fmt: skip


def _every_word(snapshot: CatalogSnapshot) -> list[str]:
    arrays = snapshot.vocabulary.arrays
    blob, offsets = bytes(arrays.sections["word_bytes"]), arrays.sections["word_offsets"]
    return [blob[offsets[i] : offsets[i + 1]].decode() for i in range(len(offsets) - 1)]


def _probes(snapshot: CatalogSnapshot, count: int, seed: int = 7) -> list[str]:
    """Catalog words and one-letter misspellings of them."""
    rng = random.Random(seed)
    every = _every_word(snapshot)
    chosen = rng.sample(every, min(count, len(every)))
    typed = [w[:i] + w[i + 1 :] for w in chosen for i in [rng.randrange(len(w))]]
    return chosen + typed + [w + "z" for w in chosen[:50]]


def _answers(snapshot: CatalogSnapshot, probes: list[str]) -> list[object]:
    vocabulary, typos = snapshot.vocabulary, snapshot.typos
    return [
        (
            word,
            typos.candidates(word),
            vocabulary.completions(word),
            vocabulary.completions(word[:5]),
            word in vocabulary,
            vocabulary.doc_count(word),
            vocabulary.titles_with(word[:5], prefix=True, up_to=40),
            vocabulary.has_prefix(word[:3] + "q"),
        )
        for word in probes
    ] + [len(vocabulary), len(typos), sorted(vocabulary.initialisms)]


def test_import_stores_the_index_and_the_engine_maps_it(sample_db: Path, builds: Builds) -> None:
    """The import writes the index file beside the catalog and names it, with its checksum,
    in catalog_meta; an engine opened on the catalog maps it and builds nothing."""
    name, digest = _meta(sample_db).split(" ")
    assert name == f"{sample_db.name}.words-1"
    assert file_checksum(sample_db.parent / name) == digest
    engine = open_blocking_engine(Settings(database_url=f"sqlite:///{sample_db}"))
    try:
        arrays = engine.snapshot.vocabulary.arrays
        assert isinstance(arrays.blob, mmap.mmap)
        assert engine.snapshot.typos.candidates("godfater")[0] == "godfather"
        assert builds == []
    finally:
        engine.close()


def test_mapped_index_answers_as_an_in_memory_build(sample_db: Path) -> None:
    """On the sample, every lookup on the mapped index equals one on an index built in
    memory from the catalog's rows, and typo candidates equal a brute-force scan."""
    mapped, built = _load(sample_db), _in_memory(sample_db)
    assert isinstance(mapped.vocabulary.arrays.blob, mmap.mmap)
    assert not isinstance(built.vocabulary.arrays.blob, mmap.mmap)
    probes = _probes(mapped, 1500)
    assert _answers(mapped, probes) == _answers(built, probes)
    assert len(mapped.vocabulary) == 39_327 and len(mapped.typos) == 37_170
    words = [w for w in probes if is_indexed(w)][:40]
    every = [w for w in _every_word(mapped) if is_indexed(w)]
    for word in words:
        expected = sorted(
            (OSA.distance(word, other), -mapped.vocabulary.doc_count(other), other)
            for other in every
            if other != word
            and OSA.distance(word, other) <= typos_for_length(max(len(word), len(other)))
            and allowed_typos(word) > 0
        )
        assert mapped.typos.candidates(word) == tuple(o for _, _, o in expected[:12]), word


@pytest.fixture
def sample_copy(sample_db: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the sample catalog with a copy of its index file."""
    path = tmp_path / "sample.db"
    with sqlite3.connect(sample_db) as source, sqlite3.connect(path) as target:
        source.backup(target)
    source.close()
    target.close()
    name = _meta(path).split(" ")[0]
    target = tmp_path / name.replace(sample_db.name, path.name)
    target.write_bytes((sample_db.parent / name).read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE catalog_meta SET value = replace(value, ?, ?) WHERE key = 'word_index'",
            (sample_db.name, path.name),
        )
    conn.close()
    yield path


def _index_file(catalog: Path) -> Path:
    return catalog.parent / _meta(catalog).split(" ")[0]


def test_missing_file_is_rebuilt_and_put_back(sample_copy: Path, builds: Builds) -> None:
    """Without its file, a worker builds the index in memory and writes the file back under
    the checksum the catalog names (the build is deterministic); the next worker maps it."""
    path = _index_file(sample_copy)
    expected = path.read_bytes()
    path.unlink()
    first = _load(sample_copy)
    assert builds == [1]
    assert path.read_bytes() == expected
    second = _load(sample_copy)
    assert builds == [1]
    assert isinstance(second.vocabulary.arrays.blob, mmap.mmap)
    probes = _probes(first, 200)
    assert _answers(first, probes) == _answers(second, probes)


def test_damaged_file_is_not_mapped(sample_copy: Path, builds: Builds) -> None:
    """A file whose bytes differ from the checksum the catalog names (one flipped byte) is
    never mapped: the index is built in memory and the file replaced by a sound one."""
    path = _index_file(sample_copy)
    sound = path.read_bytes()
    damaged = bytearray(sound)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    snapshot = _load(sample_copy)
    assert builds == [1]
    assert snapshot.typos.candidates("godfater")[0] == "godfather"
    assert path.read_bytes() == sound


def test_file_of_another_catalog_version_is_refused(sample_copy: Path, builds: Builds) -> None:
    """A sound file written for another catalog version (named, with its right checksum,
    where the catalog expects its own) is refused: built in memory, nothing overwritten."""
    path = _index_file(sample_copy)
    snapshot = _load(sample_copy)
    parts = encode(snapshot.vocabulary.arrays, catalog_version=99)
    write_atomically(path, parts)
    with sqlite3.connect(sample_copy) as conn:
        conn.execute(
            "UPDATE catalog_meta SET value = ? WHERE key = 'word_index'",
            (f"{path.name} {checksum(parts)}",),
        )
    conn.close()
    builds.clear()
    rebuilt = _load(sample_copy)
    assert builds == [1]
    assert rebuilt.version == 1
    assert file_checksum(path) == checksum(parts)  # left as it was: the catalog names it


def test_catalog_without_a_stored_index_is_built_in_memory(
    sample_copy: Path, builds: Builds
) -> None:
    """A catalog imported before indexes were stored (no word_index row) still loads."""
    with sqlite3.connect(sample_copy) as conn:
        conn.execute("DELETE FROM catalog_meta WHERE key = 'word_index'")
    conn.close()
    snapshot = _load(sample_copy)
    assert builds == [1]
    assert snapshot.typos.candidates("godfater")[0] == "godfather"


def test_each_import_writes_its_version_and_removes_older_files(
    small_copy: Settings, imdb_writer: Callable[..., dict[str, Path]]
) -> None:
    """Imports 2 and 3 write their own files; only the current and previous remain."""
    catalog = Path(small_copy.sqlite_path)
    files = imdb_writer()
    import_imdb(small_copy, list(files.values()))
    import_imdb(small_copy, list(files.values()))
    left = sorted(p.name for p in catalog.parent.glob(f"{catalog.name}.words-*"))
    assert left == [f"{catalog.name}.words-2", f"{catalog.name}.words-3"]
    assert _meta(catalog).startswith(f"{catalog.name}.words-3 ")


def test_the_stored_index_does_not_depend_on_the_process(sample_db: Path) -> None:
    """Python's str hash differs per process; the stored hashes do not: a build in another
    process (another PYTHONHASHSEED) gives the same bytes as the import stored."""
    script = (
        "import sqlite3, sys\n"
        "from reelsearch.search.snapshot import INITIALISM_TITLES_SQL, initialisms_of\n"
        "from reelsearch.search.word_store import build_word_arrays, checksum, encode\n"
        "c = sqlite3.connect(sys.argv[1])\n"
        "w = c.execute('SELECT term, doc FROM title_vocab WHERE term != char(57344)').fetchall()\n"
        "t = [x for r in c.execute(INITIALISM_TITLES_SQL) for x in r if x]\n"
        "print(checksum(encode(build_word_arrays(w, initialisms_of(t)), 1)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(sample_db)],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == _meta(sample_db).split(" ")[1]


# -- the overlay: words written after the import ---------------------------------


def test_added_words_are_found_by_every_lookup(sample_db: Path) -> None:
    """Words added over the mapped base are in the vocabulary, counted, completed and
    reached by typos; the base snapshot is unchanged."""
    base = _load(sample_db)
    grown = base.with_added_words({"zorblaxian": 3, "godfather": 2}, initialisms=["qzx"])
    assert "zorblaxian" in grown.vocabulary and "zorblaxian" not in base.vocabulary
    assert grown.vocabulary.doc_count("zorblaxian") == 3
    assert grown.vocabulary.doc_count("godfather") == base.vocabulary.doc_count("godfather") + 2
    assert grown.vocabulary.completions("zorbla") == ("zorblaxian",)
    assert grown.vocabulary.has_prefix("zorbl") and not base.vocabulary.has_prefix("zorbl")
    assert grown.typos.candidates("zorblaxain") == ("zorblaxian",)
    assert base.typos.candidates("zorblaxain") == ()
    assert "qzx" in grown.vocabulary.initialisms
    assert len(grown.vocabulary) == len(base.vocabulary) + 1
    assert len(grown.typos) == len(base.typos) + 1


def test_overlay_answers_as_a_fresh_build_of_all_words(sample_db: Path) -> None:
    """Base + overlay answers exactly as an index built from the merged words would:
    completions ranked by merged counts, candidates ordered by merged counts."""
    base = _load(sample_db)
    added = {"godfathers": 500, "godfatherz": 1, "love": 40, "lovex": 7, "starwarsy": 2}
    grown = base.with_added_words(added)
    conn = sqlite3.connect(sample_db)
    pairs = dict(conn.execute("SELECT term, doc FROM title_vocab WHERE term != char(57344)"))
    conn.close()
    for word, docs in added.items():
        pairs[word] = pairs.get(word, 0) + docs
    fresh = CatalogSnapshot.build(
        snapshot_module.CatalogFacts(
            version=1, movie_count=0, vocabulary=list(pairs.items()),
            initialisms=sorted(base.vocabulary.initialisms), genres=[], genre_counts=[],
            decades=[], kinds=[],
        )
    )  # fmt: skip
    probes = [*added, "godfathr", "godfat", "godfa", "lovexx", "starwars", "lovers"]
    probes += _probes(base, 300)
    assert _answers(grown, probes) == _answers(fresh, probes)


def test_words_longer_than_any_catalog_word_have_no_candidates(sample_db: Path) -> None:
    """A query word longer than every catalog word by more than its typo budget has no
    candidates (none can be within reach), unless an added word is that long."""
    base = _load(sample_db)
    long_word = "abcdefghij" * 3
    assert base.typos.candidates("a" * 512) == ()
    assert base.typos.candidates(long_word + "x") == ()
    grown = base.with_added_words({long_word: 1})
    assert grown.typos.candidates(long_word + "x") == (long_word,)


def test_words_past_the_vectorised_length_are_indexed_one_string_at_a_time() -> None:
    """Words longer than VECTORISED_UP_TO (a 3,000-letter run of one letter, a
    50-letter word) are indexed from their distinct deletes, and reached by typos."""
    long_word = "abcdefghij" * 5
    arrays = build_word_arrays([("x" * 3000, 1), (long_word, 1), ("godfather", 2)], [])
    typos = TypoIndex(arrays)
    assert len(typos) == 3
    assert typos.candidates("x" * 2999) == ("x" * 3000,)
    assert typos.candidates(long_word[:20] + long_word[21:]) == (long_word,)
    assert typos.candidates("godfater") == ("godfather",)


def test_vocabulary_built_from_pairs_keeps_its_constructor() -> None:
    """``Vocabulary(pairs)`` still builds in memory, as plan and tests construct it."""
    vocabulary = Vocabulary([("alien", 3), ("aliens", 2), ("alienated", 1)], ["swat"])
    assert vocabulary.completions("alien") == ("alien", "alienated", "aliens")
    assert "aliens" in vocabulary and "alie" not in vocabulary
    assert vocabulary.initialisms == frozenset({"swat"})


# -- PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
def pg_catalog(
    postgres_databases: Callable[[str], str],
    tmp_path: Path,
    imdb_writer: Callable[..., dict[str, Path]],
) -> Iterator[tuple[Settings, Path]]:
    """The small catalog imported into a fresh PostgreSQL database, with its own cache dir."""
    cache = tmp_path / "word-cache"
    settings = Settings(
        database_url=postgres_databases("words"),
        word_index_cache_dir=str(cache),
    )
    import_imdb(settings, list(imdb_writer().values()))
    yield settings, cache


def _pg_open(settings: Settings) -> CatalogSnapshot:

    engine = open_blocking_engine(settings)
    try:
        return engine.snapshot
    finally:
        engine.close()


@pytest.mark.postgres
def test_postgres_import_stores_the_index_and_hosts_cache_it(
    pg_catalog: tuple[Settings, Path], builds: Builds
) -> None:
    """The import writes the index into word_index with the catalog's version; a worker
    copies it once into the host's cache, maps the copy and builds nothing; its answers
    equal an index built from the catalog's rows."""
    settings, cache = pg_catalog
    with psycopg.connect(settings.postgres_dsn) as conn:
        (version,) = conn.execute("SELECT value FROM catalog_meta WHERE key = 'version'").fetchone()
        digest = conn.execute(
            "SELECT value FROM catalog_meta WHERE key = 'word_index'"
        ).fetchone()[0].split(" ")[1]  # fmt: skip
        stored = conn.execute("SELECT version, count(*) FROM word_index GROUP BY 1").fetchall()
        built = build_postgres_word_arrays(conn)
    assert stored == [(int(version), 1)]
    snapshot = _pg_open(settings)
    assert builds == []
    assert isinstance(snapshot.vocabulary.arrays.blob, mmap.mmap)
    copy = cache / cache_name(int(version), digest)
    assert file_checksum(copy) == digest
    fresh = CatalogSnapshot.build(
        snapshot_module.CatalogFacts(
            version=1, movie_count=0, vocabulary=[], initialisms=[], genres=[],
            genre_counts=[], decades=[], kinds=[], words=built,
        )
    )  # fmt: skip
    probes = [*_probes(snapshot, 100), "matrx", "amelie", "interstelar", "spyder"]
    assert _answers(snapshot, probes) == _answers(fresh, probes)
    assert snapshot.typos.candidates("interstelar") == ("interstellar",)


@pytest.mark.postgres
def test_postgres_damaged_cache_is_fetched_again_and_missing_rows_build(
    pg_catalog: tuple[Settings, Path], builds: Builds
) -> None:
    """A damaged cached copy is replaced from the database; with the rows gone as well,
    the worker builds the index in memory and still answers."""
    settings, cache = pg_catalog
    _pg_open(settings)
    (copy,) = cache.glob("*.words")  # the title postings are copied beside it (0037)
    sound = copy.read_bytes()
    copy.write_bytes(sound[:-1] + bytes([sound[-1] ^ 1]))
    _pg_open(settings)
    assert copy.read_bytes() == sound and builds == []
    copy.unlink()
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("DELETE FROM word_index")
    snapshot = _pg_open(settings)
    assert builds == [1]
    assert snapshot.typos.candidates("interstelar") == ("interstellar",)
    assert not copy.exists()


# -- the vectorised delete hashes --------------------------------------------------

_M = (1 << 64) - 1


def _reference_hash(text: str) -> int:
    """The documented hash, one string at a time in Python integers."""
    h = sum(ord(c) * pow(0x100000001B3, j, 1 << 64) for j, c in enumerate(text))
    h = (h + len(text) * 0x9E3779B97F4A7C15) & _M
    for multiplier in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h ^= h >> 33
        h = (h * multiplier) & _M
    return h ^ (h >> 33)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_vectorised_delete_hashes_equal_hashing_each_deleted_string(depth: int) -> None:
    """Prefix sums give, for every word, exactly the hashes of the strings left after
    deleting up to ``depth`` letters, each made and hashed one at a time."""
    rng = random.Random(depth)
    alphabet = "abcdeéøßж漢"
    words = ["a", "ab", "aab", "léon", "amélie", "schindlers", "漢字漢字"]
    words += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(60)]
    for word in words:
        expected = sorted({_reference_hash(d) for d in deletes(word, depth)})
        index_side = delete_hashes(code_points([word], len(word)), depth)
        assert sorted(set(index_side[0].tolist())) == expected, word
        assert sorted(word_delete_hashes(word, depth).tolist()) == expected, word
