"""Build ``sample_queries.jsonl``: known-item queries on the bundled sample, by rules and by hand.

Each line names the movie a person typing ``q`` means (``expect``, a sample source key).
The rules below derive queries from the catalog itself (seeded, so the output is a pure
function of the sample, the curated alternate titles, the synonym list and ``SEED``);
``hand_queries.jsonl`` adds the ones no rule writes well. Hand queries win over rule
queries with the same text.

    python tests/relevance/build_sample_set.py          # rewrites sample_queries.jsonl

Intent, the rule every generator follows: when several movies fit a query, the expected
one is the most voted of them unless the query itself singles another out (a year, an
operator). A generator drops a candidate it can't make unambiguous rather than guess.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rapidfuzz.distance import OSA

from reelsearch.catalog.importers.sample import (
    AKAS_FILE,
    SOURCE,
    load_sample_frame,
    read_sample_akas,
)
from reelsearch.catalog.records import article_first
from reelsearch.search.normalize import normalize

HERE = Path(__file__).resolve().parent
OUT = HERE / "sample_queries.jsonl"
HAND = HERE / "hand_queries.jsonl"
SEED = 20240611
CATEGORIES = (
    "misspelling",
    "split_join",
    "sequel",
    "foreign",
    "partial",
    "synonym",
    "year",
    "operators",
)
# Queries per category from the rules (hand queries come on top).
PER_CATEGORY = 50
# Words a query may drop or a phrase may not consist of alone.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words(
    "a an and the of in on at to for from with by or is it as de la le les el der die das"
)
ROMAN = {
    "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10,
    "xi": 11, "xii": 12,
}  # fmt: skip
# Keys next to each other on a QWERTY keyboard: the substitution typo.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = {_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)}
        # Each row sits half a key right of the one above it.
        for other, cols in ((_r - 1, (_c, _c + 1)), (_r + 1, (_c - 1, _c))):
            if 0 <= other < len(_ROWS):
                near |= {_ROWS[other][i] for i in cols if 0 <= i < len(_ROWS[other])}
        NEIGHBOURS[_ch] = "".join(sorted(near))
# Compounds the split rule finds that nobody types split (read off its output).
NOT_SPLIT = _words(
    "carpenter starring together another nothing something everything everyone without "
    "within outside inside forever tomorrow himself herself yourself somewhere nowhere "
    "anywhere understand however moonraker seaside bedroom notice freeman freeway outland "
    "strangelove singles sweetest starsky sweethearts hereafter horseman"
)


@dataclass(frozen=True, slots=True)
class Movie:
    key: str
    title: str
    year: int | None
    votes: int
    norm: str

    @property
    def words(self) -> list[str]:
        return self.norm.split()


@dataclass(frozen=True, slots=True)
class Query:
    q: str
    category: str
    movie: Movie
    how: str

    def record(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "category": self.category,
            "expect": self.movie.key,
            "title": self.movie.title,
            "year": self.movie.year,
            "how": self.how,
        }


class Catalog:
    """The sample in memory, with the look-ups the ambiguity checks need."""

    def __init__(self, movies: list[Movie]) -> None:
        # Most voted first; ties by source key, so every ordering is deterministic.
        self.movies = sorted(movies, key=lambda m: (-m.votes, m.key))
        self.by_key = {m.key: m for m in self.movies}
        self.by_norm: dict[str, list[Movie]] = defaultdict(list)
        self.by_word: dict[str, set[int]] = defaultdict(set)
        for index, movie in enumerate(self.movies):
            self.by_norm[movie.norm].append(movie)
            for word in set(movie.words):
                self.by_word[word].add(index)

    def popular(self, count: int) -> list[Movie]:
        return self.movies[:count]

    def with_all_words(self, words: Iterable[str]) -> list[Movie]:
        """Movies whose title holds every word, most voted first."""
        sets = [self.by_word.get(word, set()) for word in set(words)]
        if not sets:
            return []
        return [self.movies[i] for i in sorted(set.intersection(*sets))]

    def top_with_all_words(self, words: Iterable[str]) -> Movie | None:
        found = self.with_all_words(words)
        return found[0] if found else None

    def is_top_for(self, movie: Movie, words: Iterable[str]) -> bool:
        """Is ``movie`` the most voted of the titles holding every word (strictly)?"""
        found = self.with_all_words(words)
        return (
            bool(found) and found[0] is movie and (len(found) == 1 or found[1].votes < movie.votes)
        )

    def is_top_of_its_title(self, movie: Movie) -> bool:
        same = self.by_norm[movie.norm]
        return same[0] is movie and (len(same) == 1 or same[1].votes < movie.votes)


def load_catalog() -> Catalog:
    frame = load_sample_frame()
    movies = []
    for rowname, title, year, votes in frame[["rownames", "title", "year", "votes"]].itertuples(
        index=False, name=None
    ):
        if not isinstance(title, str) or not title.strip():
            continue
        shown = article_first(title.strip())
        movies.append(
            Movie(
                key=f"{SOURCE}:{int(rowname)}",
                title=shown,
                year=None if year != year else int(year),
                votes=int(votes) if votes == votes else 0,
                norm=normalize(shown),
            )
        )
    return Catalog(movies)


def phrase_in(phrase: str, norm: str) -> bool:
    return f" {phrase} " in f" {norm} "


# -- misspelling ---------------------------------------------------------------


def typo(word: str, rng: random.Random) -> str:
    """One realistic slip: swapped, dropped, doubled or neighbouring-key letter."""
    while True:
        kind = rng.choice(("swap", "drop", "double", "near"))
        i = rng.randrange(1, len(word))  # the first letter is rarely the wrong one
        if kind == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == "drop" and word[i] != word[i - 1]:
            return word[:i] + word[i + 1 :]
        if kind == "double":
            return word[: i + 1] + word[i] + word[i + 1 :]
        if kind == "near" and word[i] in NEIGHBOURS:
            return word[:i] + rng.choice(NEIGHBOURS[word[i]]) + word[i + 1 :]


def misspellings(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    for movie in cat.popular(1500):
        if not cat.is_top_of_its_title(movie):
            continue
        words = movie.words
        spots = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if not spots:
            continue
        i = rng.choice(spots)
        edits = 2 if len(words[i]) >= 9 and rng.random() < 0.5 else 1
        wrong = words[i]
        for _ in range(edits):
            wrong = typo(wrong, rng)
        # The typo budget (1 from 5 letters, 2 from 9) and no slip into a real title word.
        if OSA.distance(wrong, words[i]) != edits or wrong in cat.by_word:
            continue
        q = " ".join([*words[:i], wrong, *words[i + 1 :]])
        yield Query(q, "misspelling", movie, f"rule:typo{edits}")


# -- split_join ----------------------------------------------------------------

_INITIALS = re.compile(r"\b(?:[A-Za-z]\.){2,}")
_HYPHENATED = re.compile(r"(?<![-\w])([A-Za-z]+)-([A-Za-z]+)(?![-\w])")


def splits_and_joins(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    frequent = {w for w, ids in cat.by_word.items() if len(ids) >= 40 and len(w) >= 3}
    for movie in cat.popular(4000):
        if not cat.is_top_of_its_title(movie):
            continue
        title = movie.title
        if len(movie.words) > 6:  # nobody types a long title with a word split or joined
            continue
        match = _HYPHENATED.search(title)
        if match and len(match[0]) <= 14 and match[1].lower() in frequent | {"re", "ex"}:
            joined = _HYPHENATED.sub(lambda m: m[1] + m[2], title, count=1)
            yield Query(normalize(joined), "split_join", movie, "rule:join_hyphen")
            continue
        if (match := _INITIALS.search(title)) is not None:
            joined = title.replace(match[0], match[0].replace(".", ""), 1)
            yield Query(normalize(joined), "split_join", movie, "rule:join_initials")
            continue
        words = movie.words
        for i, word in enumerate(words):
            if len(word) < 6 or not word.isalpha() or word in NOT_SPLIT:
                continue
            if len(cat.by_word[word]) > 5:  # a common word: nobody splits "cowboy"
                continue
            cuts = [
                k for k in range(3, len(word) - 2) if word[:k] in frequent and word[k:] in frequent
            ]
            if len(cuts) == 1:
                k = cuts[0]
                q = " ".join([*words[:i], word[:k], word[k:], *words[i + 1 :]])
                yield Query(q, "split_join", movie, "rule:split_compound")
                break


# -- sequel --------------------------------------------------------------------


def sequel_form(norm: str) -> str:
    """What a sequel query is compared by: numbers as digits, no "part", no leading "the"."""
    words = [str(ROMAN.get(w, w)) for w in norm.split() if w != "part"]
    return " ".join(words[1:] if words[:1] == ["the"] else words)


def sequels(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    forms = [(sequel_form(m.norm) + " ", m) for m in cat.movies]
    for movie in cat.popular(6000):
        words = movie.words
        spots = [i for i, w in enumerate(words) if w in ROMAN and i > 0]
        if not spots:
            continue
        i = spots[0]
        if not re.search(rf"\b{words[i]}\b\s*(?:$|:| - )", movie.title, re.IGNORECASE):
            continue  # "Menace II Society": a word that looks like a numeral
        number = ROMAN[words[i]]
        base = sequel_form(" ".join(words[:i]))
        before = f"{base} {number - 1} " if number > 2 else f"{base} "
        if not any(f.startswith(before) and m.year and movie.year and m.year < movie.year
                   for f, m in forms if m is not movie):  # fmt: skip
            continue  # "Malcolm X", "Henry V": a numeral, not a sequel
        head = words[:i]
        if head[0] == "the" and len(head) > 1 and rng.random() < 0.5:
            head = head[1:]
        q_words = [*head, str(number)]
        if words[i - 1] not in ("part", "episode", "chapter") and rng.random() < 0.3:
            q_words.insert(-1, "part")
        # The movie meant: the most voted title that starts with these words.
        typed = sequel_form(" ".join(q_words)) + " "
        starts = [m for form, m in forms if form.startswith(typed)]
        if starts and starts[0] is movie:
            yield Query(" ".join(q_words), "sequel", movie, "rule:roman_to_arabic")


# -- foreign -------------------------------------------------------------------


def foreign_titles(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    text = resources.files("reelsearch.catalog.importers").joinpath(AKAS_FILE).read_text("utf-8")
    by_title = {(m.title, m.year): m for m in cat.movies}
    seen: set[str] = set()
    rows = read_sample_akas(text)
    rng.shuffle(rows)
    for title, year, alt in rows:
        movie = by_title[(title, year)]
        norm = normalize(alt)
        # Another movie called that (Hero, The Postman) may be the one meant: skip.
        if norm in cat.by_norm or norm == movie.norm or movie.key in seen:
            continue
        if not cat.is_top_for(movie, norm.split()) and cat.with_all_words(norm.split()):
            continue
        seen.add(movie.key)
        q = alt.lower() if rng.random() < 0.6 else norm
        yield Query(q, "foreign", movie, "rule:alt_title")


# -- partial -------------------------------------------------------------------


def partials(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    for movie in cat.popular(2500):
        words = movie.words
        if ":" in movie.title or " - " in movie.title:
            sub = normalize(re.split(r":| - ", movie.title)[-1]).split()
            if sub and sub[0] == "the":
                sub = sub[1:]
            how = "rule:subtitle"
        elif len(words) >= 4:
            sub = words[: rng.randrange(2, len(words) - 1)]
            how = "rule:first_words"
        else:
            continue
        content = [w for w in sub if w not in STOPWORDS and len(w) >= 3]
        if len(sub) < 2 or len(content) < 2 or " ".join(sub) == movie.norm:
            continue
        if sub[-1] in STOPWORDS:  # people stop typing at a word that says something
            continue
        holders = cat.with_all_words(sub)
        if holders[0] is movie and (len(holders) == 1 or holders[1].votes * 2 <= movie.votes):
            yield Query(" ".join(sub), "partial", movie, how)


# -- synonym -------------------------------------------------------------------


def synonym_rules() -> list[tuple[list[str], list[str]]]:
    """``(typed forms, meant forms)`` from rules/synonyms.txt (multi-way lines both ways)."""
    text = resources.files("reelsearch.search").joinpath("rules/synonyms.txt").read_text("utf-8")
    pairs: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=>" in line:
            left, right = line.split("=>", 1)
            pairs.append(([normalize(left)], [normalize(r) for r in right.split(",")]))
        else:
            forms = [normalize(f) for f in line.split(",")]
            pairs.append((forms, forms))
    return pairs


# Forms nobody types for the other ("missus" for "Mrs.", "pt" for "part").
UNTYPED = frozenset({"missus", "mister", "pt", "ep"})
# Series words a query after an abbreviation skips: "sw phantom menace".
SERIES_WORDS = frozenset({"episode", "part", "chapter", "i", *ROMAN}) | {
    str(n) for n in range(1, 13)
}
# Word-for-word synonym queries per synonym line, so "mr"/"mister" can't fill the category.
PER_WORD_LINE = 5


def synonyms(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    for typed_forms, meant_forms in synonym_rules():
        is_abbreviation = typed_forms is not meant_forms
        made = 0
        for meant in meant_forms:
            for movie in cat.popular(8000):
                if not phrase_in(meant, movie.norm):
                    continue
                for typed in typed_forms:
                    if typed in UNTYPED or typed == meant or phrase_in(typed, movie.norm):
                        continue
                    before, _, after = f" {movie.norm} ".partition(f" {meant} ")
                    if is_abbreviation:  # a series: "lotr", "lotr two towers", "sw phantom menace"
                        rest = [w for w in after.split() if w not in SERIES_WORDS]
                        while rest and rest[0] in STOPWORDS:
                            rest = rest[1:]
                        size = rng.choice((2, 3))
                        while size < len(rest) and len(rest[size - 1]) < 4:
                            size += 1  # not "lotr two": stop after a word that says something
                        extra = rest[:size]
                        while extra and extra[-1] in STOPWORDS:
                            extra.pop()
                        if movie.votes < 1000:
                            continue
                        for words in ([], extra) if extra else ([],):
                            if cat.is_top_for(movie, [*meant.split(), *words]):
                                q = " ".join([typed, *words])
                                yield Query(q, "synonym", movie, "rule:synonym_series")
                    elif made < PER_WORD_LINE:  # a word for a word: "dr dolittle"
                        head, tail = before.split(), after.split()
                        others = [w for w in head + tail if w not in STOPWORDS]
                        if not others or not tail or movie.votes < 1000:
                            continue  # "the st", "my first mr": nobody types those
                        tail = tail[: max(1, 5 - len(head))]  # "doctor strangelove", not all of it
                        needed = [*head, *meant.split(), *tail]
                        if cat.is_top_for(movie, needed):
                            made += 1
                            q = " ".join([*head, typed, *tail])
                            yield Query(q, "synonym", movie, "rule:synonym_word")


# -- year ----------------------------------------------------------------------


def years(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    for norm, same in sorted(cat.by_norm.items(), key=lambda kv: -kv[1][0].votes):
        if len(same) < 2 or len(norm) < 4:
            continue
        known = [m for m in same[1:] if m.votes >= 150 and m.year is not None]
        for movie in known:
            if sum(1 for m in same if m.year == movie.year) > 1:
                continue
            yield Query(f"{movie.title.lower()} {movie.year}", "year", movie, "rule:remake_year")


# -- operators -----------------------------------------------------------------


def operators(cat: Catalog, rng: random.Random) -> Iterator[Query]:
    for movie in cat.popular(3000):
        words = movie.words
        rivals = [m for m in cat.with_all_words(words) if m.votes > movie.votes]
        if rivals and cat.is_top_of_its_title(movie) and len(movie.norm) >= 3:
            # "star wars -episode": a word every more voted rival has and this title lacks,
            # the rarest such word (the one a person would think of).
            shared = set.intersection(*(set(r.words) for r in rivals)) - set(words)
            usable = [w for w in shared if w not in STOPWORDS and len(w) >= 4]
            for word in sorted(usable, key=lambda w: (len(cat.by_word[w]), w)):
                left = [m for m in cat.with_all_words(words) if word not in m.words]
                if left and left[0] is movie:
                    q = f"{movie.norm} -{word}"
                    yield Query(q, "operators", movie, "rule:exclude_word")
                    break
        # '"the lost world"': the title, or its first words, as a phrase, when the same
        # words in any order fit a more voted movie.
        content = [w for w in words if w not in STOPWORDS and len(w) >= 3]
        if len(content) < 2:
            continue
        for size in (len(words),):
            phrase = " ".join(words[:size])
            if words[size - 1] in STOPWORDS or sum(w in content for w in words[:size]) < 2:
                continue
            holders = cat.with_all_words(words[:size])
            with_phrase = [m for m in holders if phrase_in(phrase, m.norm)]
            if with_phrase[0] is movie and holders[0] is not movie:
                yield Query(f'"{phrase}"', "operators", movie, "rule:phrase")
                break


GENERATORS = {
    "misspelling": misspellings,
    "split_join": splits_and_joins,
    "sequel": sequels,
    "foreign": foreign_titles,
    "partial": partials,
    "synonym": synonyms,
    "year": years,
    "operators": operators,
}


def query_key(q: str) -> str:
    """Queries that differ only in case or spacing are the same query."""
    return " ".join(q.lower().split())


def read_hand(cat: Catalog) -> list[Query]:
    queries = []
    for n, line in enumerate(HAND.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        movie = cat.by_key.get(row["expect"])
        if movie is None or movie.title != row["title"] or movie.year != row["year"]:
            sys.exit(
                f"{HAND.name} line {n}: {row['expect']} is not {row['title']!r} ({row['year']})"
            )
        if row["category"] not in CATEGORIES:
            sys.exit(f"{HAND.name} line {n}: unknown category {row['category']!r}")
        queries.append(Query(row["q"], row["category"], movie, "hand"))
    return queries


def build(cat: Catalog) -> list[Query]:
    hand = read_hand(cat)
    taken = {query_key(q.q) for q in hand}
    chosen: list[Query] = []
    for category, generate in GENERATORS.items():
        rng = random.Random(f"{SEED}:{category}")
        candidates = []
        for query in generate(cat, rng):
            key = query_key(query.q)
            norm = normalize(query.q)
            if key in taken or (category not in ("year", "operators") and norm in cat.by_norm):
                continue  # its own exact title, or another movie's: not what this set tests
            taken.add(key)
            candidates.append(query)
        # A spread over the category, not just its first (most voted) candidates.
        if len(candidates) > PER_CATEGORY:
            candidates = sorted(rng.sample(candidates, PER_CATEGORY), key=candidates.index)
        chosen.extend(candidates)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    every = [*chosen, *hand]
    return sorted(every, key=lambda q: (order[q.category], q.how == "hand", -q.movie.votes))


def main() -> None:
    cat = load_catalog()
    queries = build(cat)
    with OUT.open("w", encoding="utf-8", newline="\n") as out:
        for query in queries:
            out.write(json.dumps(query.record(), ensure_ascii=False) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for query in queries:
        counts[query.category] += 1
    print(f"{len(queries)} queries -> {OUT}")
    for category in CATEGORIES:
        print(f"  {category:12} {counts[category]}")


if __name__ == "__main__":
    main()
