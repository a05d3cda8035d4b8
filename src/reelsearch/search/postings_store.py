"""Title postings built once, at import, and stored in a file every worker maps.

What ``search/postings.py`` reads, as four flat arrays:

- ``posting_offsets`` + ``postings``: for each word of the catalog's word
  index (numbered as that index numbers them), the search ranks of the
  titles holding it, ascending (CSR: word n's ranks are
  ``postings[posting_offsets[n]:posting_offsets[n + 1]]``);
- ``title_offsets`` + ``title_bytes``: each rank's title document (the
  normalized titles, primary first, joined by ``JOINED_TITLES``, as the
  title index holds it) in UTF-8, one after another by rank.

The file has the word index's layout (``word_store.encode_sections``, magic
``RSPOSTS1``); its header names the catalog version it was built for and the
checksum of the word index whose numbers it uses, and the catalog records
the file's own checksum in ``catalog_meta`` (key ``title_postings``), as it
does the word index's. Mapped read-only, its pages are shared by every worker
of a host, so a worker holds no postings of its own (decision 0033).

The build is deterministic (titles by rank, stable sorts), so a worker that
finds the file missing can rebuild the same bytes from the same titles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from reelsearch.search.normalize import TITLE_SEPARATOR
from reelsearch.search.title_tokens import TitleTokens, tokenize_titles
from reelsearch.search.word_arrays import WordArrays, WordLookup
from reelsearch.search.word_store import (
    WordFileError,
    encode_sections,
    map_checked,
    parse_sections,
)

log = logging.getLogger(__name__)

MAGIC = b"RSPOSTS1"
FORMAT = 1
SECTION_TYPES: Mapping[str, str] = {
    "posting_offsets": "<i8",
    "postings": "<i4",
    "title_offsets": "<i8",
    "title_bytes": "u1",
}
# The titles of every movie, in the title index's form (search_rank = its rowid).
TITLES_SQL = "SELECT search_rank, norm_title, alt_norm_titles FROM movies"


@dataclass(frozen=True, slots=True)
class PostingArrays:
    """The four sections (see module doc), in memory or over a mapped file."""

    sections: Mapping[str, npt.NDArray[Any]]
    blob: Any  # where title bytes are sliced from: the mapping, or bytes
    blob_offset: int
    words_checksum: str  # the word index the postings are numbered by

    def nbytes(self) -> int:
        return sum(int(section.nbytes) for section in self.sections.values())


def build_postings(
    rows: Iterable[tuple[Any, ...]], words: WordArrays, words_checksum: str
) -> PostingArrays | None:
    """The postings of ``rows`` (search_rank, norm_title, alt_norm_titles) numbered by
    ``words``, or None when a title's words are not exactly the index's (a word it
    lacks, or another count): then FTS5 splits titles otherwise, and only it is right.

    CPU work at import: seconds at 1 M titles (``title_tokens.py``); the SQLite import
    does it on its second core (``catalog/word_index_ahead.py``)."""
    return number_postings(tokenize_titles(rows), words, words_checksum)


def number_postings(
    tokens: TitleTokens, words: WordArrays, words_checksum: str
) -> PostingArrays | None:
    """``build_postings`` of titles already split into words."""
    lookup = WordLookup(words, bisects=False)
    numbers = {word: n for n, word in enumerate(lookup.words_at(range(lookup.count)))}
    numbers[TITLE_SEPARATOR] = -1  # in every document with alternates, in no posting
    try:
        vocabulary = tokens.vocabulary
        renumber = np.fromiter(
            map(numbers.__getitem__, vocabulary), dtype=np.int64, count=len(vocabulary)
        )
    except KeyError as exc:
        _refuse(f"a title holds the word {exc.args[0]!r}, which the title index lacks")
        return None
    del numbers
    numbered = renumber[tokens.word_numbers()]
    keep = numbered >= 0
    pairs = (numbered[keep] << 32) | tokens.pair_ranks()[keep]
    kept = renumber[renumber >= 0]
    if not bool(np.all(kept[1:] > kept[:-1])):  # both sorted by word: only a foreign order
        pairs = np.sort(pairs)
    counts = np.bincount(pairs >> 32, minlength=lookup.count)
    if not np.array_equal(counts, words.sections["doc_counts"]):
        _refuse("a word's title count differs from the title index's")
        return None
    offsets = np.zeros(lookup.count + 1, dtype="<i8")
    np.cumsum(counts, out=offsets[1:])
    rank_of = tokens.ranks
    documents = tokens.documents
    order = np.argsort(rank_of, kind="stable")
    top = int(rank_of.max(initial=0))
    lengths = np.zeros(top + 2, dtype="<i8")
    lengths[rank_of + 1] = np.fromiter(map(len, documents), dtype=np.int64, count=len(documents))
    blob = b"".join(documents[i] for i in order.tolist())
    sections = {
        "posting_offsets": offsets,
        "postings": (pairs & 0xFFFFFFFF).astype("<i4"),
        "title_offsets": np.cumsum(lengths),
        "title_bytes": np.frombuffer(blob, dtype="u1"),
    }
    return PostingArrays(sections, blob, 0, words_checksum)


def encode_postings(postings: PostingArrays, catalog_version: int) -> list[bytes]:
    """The file image of ``postings`` for ``catalog_version``, as parts to write in order."""
    fields = {
        "format": FORMAT,
        "catalog_version": catalog_version,
        "words_checksum": postings.words_checksum,
    }
    return encode_sections(MAGIC, fields, postings.sections, SECTION_TYPES)


def map_postings_file(path: Path, *, catalog_version: int, expected_checksum: str) -> PostingArrays:
    """The postings of a stored file, mapped read-only; WordFileError if it must not be used."""
    mapped = map_checked(path, expected_checksum)
    header, sections = parse_sections(mapped, path, MAGIC)
    if header.get("format") != FORMAT or header.get("catalog_version") != catalog_version:
        raise WordFileError(
            f"{path} holds format {header.get('format')} of catalog version "
            f"{header.get('catalog_version')}, not format {FORMAT} of version {catalog_version}"
        )
    blob_offset = header["sections"]["title_bytes"][0]
    return PostingArrays(sections, mapped, blob_offset, str(header["words_checksum"]))


def _refuse(reason: str) -> None:
    log.warning("title postings not built, searches read FTS5 only: %s", reason)
