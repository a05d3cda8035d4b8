"""Seeded generator of synthetic IMDb non-commercial dataset files, for scale tests.

The real dumps (title.basics, title.ratings, title.akas) are too large to ship and may not be
redistributed, so this module writes look-alike files of any size: gzip-compressed UTF-8, tab
separated, a header row, ``\\N`` for null and no quoting at all (titles hold ``"`` and ``'``).
The content is shaped for realistic search load: a skewed title-type mix, Zipf-distributed title
words from a vocabulary that grows with the catalog (curated common words, then pseudo-words
composed from syllables, some accented), sequels, subtitles, years, quotes, hyphens, long titles,
television episode names, a heavy tail of vote counts and translated alternate titles.

The same ``(titles, seed)`` always gives byte-identical files; rows are produced in chunks and
streamed to disk, so memory stays bounded at any size.
"""

from __future__ import annotations

import gzip
import random
from bisect import bisect
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

__all__ = ["GeneratedDataset", "write_imdb_dataset"]

NULL = "\\N"
BASICS_HEADER = (
    "tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\tstartYear\tendYear"
    "\truntimeMinutes\tgenres\n"
)
RATINGS_HEADER = "tconst\taverageRating\tnumVotes\n"
AKAS_HEADER = "titleId\tordering\ttitle\tregion\tlanguage\ttypes\tattributes\tisOriginalTitle\n"

_CHUNK = 20_000  # titles per write: bounds memory; part of the output's identity, keep it
_LAST_YEAR = 2026
_WORDS_PER_TITLE = 0.5  # vocabulary ranks per title: ~300k distinct words at 1 M titles
_CACHED_WORDS = 65_536  # the most frequent ranks, title-cased once up front

# titleType, share of titles (%), chance of a rating, chance of akas, runtime range, runtime null
_TYPES: tuple[tuple[str, float, float, float, int, int, float], ...] = (
    ("tvEpisode", 50.0, 0.18, 0.08, 18, 65, 0.5),
    ("movie", 18.0, 0.60, 0.60, 60, 180, 0.25),
    ("short", 12.0, 0.35, 0.25, 1, 40, 0.3),
    ("video", 5.0, 0.30, 0.20, 20, 120, 0.4),
    ("tvSeries", 5.0, 0.55, 0.50, 20, 60, 0.4),
    ("tvMovie", 4.0, 0.45, 0.40, 60, 120, 0.3),
    ("tvMiniSeries", 2.0, 0.50, 0.40, 40, 400, 0.4),
    ("tvSpecial", 1.5, 0.30, 0.20, 30, 120, 0.4),
    ("videoGame", 1.5, 0.35, 0.30, 1, 2, 0.97),
    ("tvShort", 1.0, 0.25, 0.15, 1, 20, 0.4),
)
_TYPE_CUM = list(accumulate(t[1] for t in _TYPES))
_GENRE_WEIGHTS = {
    "Drama": 30, "Comedy": 22, "Documentary": 14, "Romance": 6, "Action": 6, "Crime": 6,
    "Thriller": 5, "Horror": 5, "Adventure": 5, "Family": 5, "Reality-TV": 5, "Animation": 4,
    "Music": 4, "Talk-Show": 3, "Biography": 3, "Mystery": 3, "Fantasy": 3, "History": 3,
    "Sport": 3, "News": 3, "Sci-Fi": 2, "Game-Show": 2, "Musical": 1, "War": 1,
    "Western": 1, "Film-Noir": 0.2,
}  # fmt: skip
_GENRES = tuple(_GENRE_WEIGHTS)  # no Adult nor Short: isAdult and the short types add them
_GENRE_CUM = list(accumulate(_GENRE_WEIGHTS.values()))
_GENRE_COUNT_CUM = (0.08, 0.50, 0.75, 1.0)  # P(no genre), then 1, 2, 3 draws
_LENGTHS = (1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 5, 5, 6, 7, 8, 9)
_SEQUELS = (" 2", " 3", " 4", " II", " III", " IV", ": Part II", " Part 2", " Chapter 3")
_MONTHS = "January February March April May June July August September October November December"
_MONTH_NAMES = tuple(_MONTHS.split())

# Common title words, most frequent first (ranks 0..); rarer ranks are syllable pseudo-words.
_BASE_TEXT = """
    the of a love night in and man to my life last day story you girl for world time is me
    black dead blood house dark christmas on with from girls home big dream little king new
    death city war return secret heart de red one lost woman at an two all boy game end no
    live light white fire star family summer ghost are music friends street lady sweet wild
    moon best good rock blue water child happy road killer beautiful inside three american
    power mr devil back first people out your it stories kids angel brother sister father
    mother baby monster school high island dance party hotel gold shadow escape zero paradise
    murder mystery crazy hell heaven eye eyes earth sea ocean river mountain forest garden
    winter spring autumn storm rain snow sun sky wind golden silver iron steel glass stone bad
    evil holy lucky lonely broken hidden silent final perfect dangerous young old funny
    strange true wrong deep cold hot fast long short great small million thousand hundred four
    five six seven ten twelve space planet alien robot machine zombie vampire witch wolf
    dragon tiger lion horse dog cat bird fish snake spider bear monkey queen prince princess
    knight soldier hero hunter thief doctor teacher detective captain president agent spy
    cowboy pirate ninja samurai warrior master legend journey adventure quest battle revenge
    justice freedom truth lies promise wedding birthday holiday weekend tonight tomorrow
    yesterday forever never always again amour café niño über mädchen noël señor fiancée
    résumé naïve déjà crème piñata jalapeño don't it's can't o'clock i'm won't o'brien 'til
    rock'n'roll"""
_BASE = tuple(dict.fromkeys(_BASE_TEXT.split()))  # ordered, duplicates dropped
_SMALL_TEXT = "a an and at by for from in into of on or the to with de"
_SMALL = frozenset(_SMALL_TEXT.split())
_CONSONANTS = "bcdfghklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = tuple(c + v for c in _CONSONANTS for v in _VOWELS)  # 80, all two letters long
_ACCENTED = {"a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü"}
_MULTIPLIER = 2_654_435_761  # coprime with 80**n: scrambles ranks within a word length

# region, weight, language, articles, (letter, replacement), suffixes. Regions without
# articles keep the English title (US, GB) or get native-script words (RU, JP).
_REGIONS: tuple[tuple[str, int, str, tuple[str, ...], tuple[str, str], tuple[str, ...]], ...] = (
    ("US", 12, "en", (), ("", ""), ()),
    ("GB", 6, "en", (), ("", ""), ()),
    ("FR", 8, "fr", ("Le ", "La ", "Les ", "L'"), ("e", "é"), ("e", "", "s")),
    ("DE", 8, "de", ("Der ", "Die ", "Das "), ("u", "ü"), ("en", "", "e")),
    ("ES", 7, "es", ("El ", "La ", "Los "), ("n", "ñ"), ("o", "a", "")),
    ("IT", 6, "it", ("Il ", "La ", "I "), ("o", "ò"), ("i", "o", "")),
    ("BR", 5, "pt", ("O ", "A ", "Os "), ("a", "ã"), ("o", "a", "")),
    ("SE", 2, "sv", ("", "En "), ("a", "å"), ("en", "")),
    ("RU", 4, "ru", (), ("", ""), ()),
    ("JP", 4, "ja", (), ("", ""), ()),
)
_REGION_CUM = list(accumulate(r[1] for r in _REGIONS))
_SCRIPTS = {
    "ru": ("ко", "ра", "ли", "на", "мо", "ве", "ту", "сы", "да", "жи", "пе", "ло"),
    "ja": tuple("カリナトミスロケアンシタ"),
}
_AKA_TYPES = (NULL, NULL, NULL, NULL, "imdbDisplay", "imdbDisplay", "alternative", "working",
              "festival", "dvd", "tv", "video")  # fmt: skip
_AKA_ATTRIBUTES = ("literal English title", "new title", "complete title", "short title",
                   "informal English title", "alternative spelling", "literal title")  # fmt: skip


@dataclass(frozen=True, slots=True)
class GeneratedDataset:
    """Paths of the files written by :func:`write_imdb_dataset` and the number of titles."""

    basics: Path  # title.basics.tsv.gz
    ratings: Path  # title.ratings.tsv.gz
    akas: Path | None  # title.akas.tsv.gz, None when not asked for
    titles: int


def _word(rank: int) -> str:
    """The lower-case word of a vocabulary rank: curated words first, then pseudo-words."""
    if rank < len(_BASE):
        return _BASE[rank]
    index = rank - len(_BASE)
    length, block = 2, len(_SYLLABLES) ** 2
    while index >= block:
        index -= block
        length, block = length + 1, block * len(_SYLLABLES)
    code = index * _MULTIPLIER % block  # a bijection on the block, so words stay distinct
    parts = []
    for _ in range(length):
        code, digit = divmod(code, len(_SYLLABLES))
        parts.append(_SYLLABLES[digit])
    word = "".join(parts)
    if index % 9 == 0:  # ~11% get an accented vowel; the second letter is always a vowel
        return word[0] + _ACCENTED[word[1]] + word[2:]
    if index % 9 == 1 and "n" in word:
        return word.replace("n", "ñ", 1)
    return word


def _cap(word: str) -> str:
    return word[0].upper() + word[1:]


class _Titles:
    """Draws title-cased titles whose words follow a Zipf law over ``size`` vocabulary ranks."""

    def __init__(self, size: int) -> None:
        self.size = size
        lower = [_word(rank) for rank in range(min(size, _CACHED_WORDS))]
        self.first = [_cap(w) for w in lower]
        self.inner = [w if w in _SMALL else _cap(w) for w in lower]

    def words(self, rng: random.Random, count: int) -> list[str]:
        size, rnd, first, inner = self.size, rng.random, self.first, self.inner
        cached, out = len(inner), []
        for i in range(count):
            rank = int(size ** rnd()) - 1  # P(rank) ~ 1 / (rank + 1)
            if rank < cached:
                out.append(inner[rank] if i else first[rank])
            else:
                out.append(_cap(_word(rank)))
        return out

    def title(self, rng: random.Random, sequel: bool = True) -> str:
        roll = rng.random()
        count = 10 + int(rng.random() * 20) if roll < 0.006 else _LENGTHS[int(roll * 20)]
        words = self.words(rng, count)
        at = int(rng.random() * count)
        roll = rng.random()
        if roll < 0.03:
            words[at] += "'s"
        elif roll < 0.06 and at + 1 < count:
            words[at : at + 2] = [words[at] + "-" + words[at + 1].lower()]
        elif roll < 0.075:
            words[at] = f'"{words[at]}"'
        elif roll < 0.078:
            words.insert(at, f'{7 + int(rng.random() * 6)}"')  # an unbalanced inch mark
        elif roll < 0.095:
            words.insert(at, str(1900 + int(rng.random() * 127)))
        elif roll < 0.105 and count > 1:
            words.insert(max(1, at), "&")
        elif roll < 0.125:
            words[-1] += ("!", "?", "...")[int(rng.random() * 3)]
        while len(words) > 1 and words[-1] in _SMALL:  # no "Night of"
            words.pop()
        text = " ".join(words)
        roll = rng.random()
        if sequel and roll < 0.04:
            text += _SEQUELS[int(rng.random() * len(_SEQUELS))]
        if roll > 0.92:
            text += ": " + " ".join(self.words(rng, 1 + int(rng.random() * 4)))
        return text


def _translate(rng: random.Random, title: str, region: int) -> str:
    """An other-language variant: native-script words, or an article plus respelled words."""
    _, _, language, articles, (letter, replacement), suffixes = _REGIONS[region]
    if language in _SCRIPTS:
        syllables, native = _SCRIPTS[language], []
        for i in range(1 + int(rng.random() * 4)):
            native.append("".join(syllables[int(rng.random() * 12)] for _ in range(2 + i % 3)))
        return " ".join(native)
    if not articles:
        return title
    first, _, rest = title.partition(" ")
    if rest and first in ("The", "A", "An"):
        title = rest
    words = [
        w.replace(letter, replacement, 1) + suffixes[len(w) % len(suffixes)]
        if len(w) > 3 and w.isalpha()
        else w
        for w in title.split(" ")
    ]
    return articles[int(rng.random() * len(articles))] + " ".join(words)


def _akas(rng: random.Random, tconst: str, original: str, primary: str) -> list[str]:
    """The original-title row plus 1 to 3 regional alternate titles."""
    rows = [f"{tconst}\t1\t{original}\t{NULL}\t{NULL}\toriginal\t{NULL}\t1\n"]
    for ordering in range(2, 3 + int(rng.random() * 3)):
        region = bisect(_REGION_CUM, rng.random() * _REGION_CUM[-1])
        code, language = _REGIONS[region][0], _REGIONS[region][2]
        title = _translate(rng, primary, region)
        lang = language if rng.random() < (0.6 if language in _SCRIPTS else 0.2) else NULL
        kind = _AKA_TYPES[int(rng.random() * len(_AKA_TYPES))]
        roll = rng.random()
        attributes = _AKA_ATTRIBUTES[int(roll * 140)] if roll < 0.05 else NULL
        rows.append(f"{tconst}\t{ordering}\t{title}\t{code}\t{lang}\t{kind}\t{attributes}\t0\n")
    return rows


def _title_row(
    rng: random.Random, titles: _Titles, kind: str, start: int | None
) -> tuple[str, str]:
    """primaryTitle and originalTitle for one title of the given type."""
    roll = rng.random()
    if kind == "tvEpisode" and roll < 0.43:
        if roll < 0.35:
            primary = f"Episode #{1 + int(rng.random() ** 2 * 30)}.{1 + int(rng.random() * 40)}"
        else:
            month = _MONTH_NAMES[int(rng.random() * 12)]
            day = 1 + int(rng.random() * 28)
            year = start if start is not None else 1950 + int(rng.random() * 77)
            primary = f"Episode dated {day} {month} {year}"
        return primary, primary
    primary = titles.title(rng, sequel=kind != "tvEpisode")
    if rng.random() < 0.06:
        region = 2 + int(rng.random() * (len(_REGIONS) - 2))  # a non-English original
        return primary, _translate(rng, primary, region)
    return primary, primary


def _chunk(
    rng: random.Random, titles: _Titles, next_id: int, count: int, with_akas: bool
) -> tuple[list[str], list[str], list[str], int]:
    """Rows of ``count`` consecutive titles; returns basics, ratings and akas lines, next id."""
    basics: list[str] = []
    ratings: list[str] = []
    akas: list[str] = []
    rnd = rng.random
    for type_index in rng.choices(range(len(_TYPES)), cum_weights=_TYPE_CUM, k=count):
        kind, _, p_rating, p_akas, low, high, p_no_runtime = _TYPES[type_index]
        tconst = f"tt{next_id:07d}"
        next_id += 1 if rnd() < 0.8 else 2 + int(rnd() * 3)  # ids have gaps
        start: int | None = None
        if rnd() >= (0.2 if kind == "tvEpisode" else 0.05):
            start = 1890 + int((_LAST_YEAR - 1889) * rnd() ** 0.35)  # skewed recent
        primary, original = _title_row(rng, titles, kind, start)
        adult = rnd() < 0.02
        end = NULL
        if start is not None and kind in ("tvSeries", "tvMiniSeries") and rnd() < 0.6:
            span = 1 if kind == "tvMiniSeries" else 20
            end = str(min(_LAST_YEAR, start + int(rnd() ** 2 * span)))
        runtime = NULL
        if rnd() >= p_no_runtime:
            runtime = str(low + int(rnd() * (high - low + 1)))
        picked = ["Adult"] if adult else []
        if kind in ("short", "tvShort"):
            picked.append("Short")
        for _ in range(bisect(_GENRE_COUNT_CUM, rnd())):
            picked.append(_GENRES[bisect(_GENRE_CUM, rnd() * _GENRE_CUM[-1])])
        genres = ",".join(sorted(set(picked[:3]))) if picked else NULL
        year = NULL if start is None else str(start)
        basics.append(
            f"{tconst}\t{kind}\t{primary}\t{original}\t{int(adult)}\t{year}\t{end}\t{runtime}"
            f"\t{genres}\n"
        )
        if rnd() < p_rating:
            votes = int(5.0 * (1.0 - rnd()) ** -1.35)  # Pareto: median ~13
            while votes > 2_000_000:
                votes = int(5.0 * (1.0 - rnd()) ** -1.35)
            score = min(10.0, max(1.0, rng.gauss(6.3, 1.3 if votes > 50 else 1.8)))
            ratings.append(f"{tconst}\t{score:.1f}\t{votes}\n")
        if with_akas and rnd() < p_akas:
            akas.extend(_akas(rng, tconst, original, primary))
    return basics, ratings, akas, next_id


def write_imdb_dataset(
    out_dir: Path,
    titles: int,
    *,
    seed: int = 0,
    akas: bool = True,
    on_progress: Callable[[int], object] | None = None,
) -> GeneratedDataset:
    """Write title.basics/ratings(/akas).tsv.gz with ``titles`` titles into ``out_dir``.

    ``on_progress(done)`` is called with the titles written so far after each chunk.
    """
    if titles < 0:
        raise ValueError(f"titles must be >= 0, got {titles}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"reelsearch-imdb:{seed}")  # a str seed keeps -1 and 1 apart
    drawer = _Titles(len(_BASE) + int(titles * _WORDS_PER_TITLE) + 1)
    basics_path = out_dir / "title.basics.tsv.gz"
    ratings_path = out_dir / "title.ratings.tsv.gz"
    akas_path = out_dir / "title.akas.tsv.gz" if akas else None
    with ExitStack() as stack:

        def open_gz(path: Path, header: str) -> gzip.GzipFile:
            # mtime=0: the compressed bytes, not only the content, are reproducible
            out = stack.enter_context(gzip.GzipFile(path, "wb", compresslevel=1, mtime=0))
            out.write(header.encode())
            return out

        basics_out = open_gz(basics_path, BASICS_HEADER)
        ratings_out = open_gz(ratings_path, RATINGS_HEADER)
        akas_out = open_gz(akas_path, AKAS_HEADER) if akas_path else None
        next_id, done = 1, 0
        while done < titles:
            count = min(_CHUNK, titles - done)
            basics, ratings, aka_rows, next_id = _chunk(rng, drawer, next_id, count, akas)
            basics_out.write("".join(basics).encode())
            ratings_out.write("".join(ratings).encode())
            if akas_out is not None:
                akas_out.write("".join(aka_rows).encode())
            done += count
            if on_progress is not None:
                on_progress(done)
    return GeneratedDataset(basics_path, ratings_path, akas_path, titles)
