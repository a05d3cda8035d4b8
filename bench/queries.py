"""Generate seeded known-item queries from the catalog, plus per-engine path files for wrk.

Why: recall is only comparable if both engines answer the very same questions, and only
reproducible if the questions are a pure function of (catalog, seed). Each query names the one
movie a person was looking for (``expected_id``); the kinds mimic how people actually type:

- ``exact``: the full title;
- ``prefix``: what has been typed so far, lower-cased: the first 2-8 characters of the title, or
  the leading words plus the first 2-8 characters of the last word ("the mat");
- ``typo``: one edit (insertion, deletion, substitution, adjacent transposition) in one word of
  at least 5 letters (words with digits are never touched);
- ``word_order``: the title's words shuffled (titles of 2+ words); a shuffle that spells
  another movie's whole title is skipped, as it is that movie's exact query;
- ``filtered``: two or three title words (skipping stopwords when it can) plus a year range
  or a genre filter that the movie satisfies.

Targets are drawn without replacement, separately per kind, among movies with at least
``min_votes`` votes, with probability proportional to log(1 + votes): people look for movies
they have heard of, and the long tail of 5-vote shorts would otherwise dominate the sample.

    python bench/queries.py --db ./reelsearch.db --out-dir /tmp/q
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalog import Movie, load_movies
from engines import Engine, Reelsearch, Typesense

KINDS = ("exact", "prefix", "typo", "word_order", "filtered")
_ALPHA_WORD = re.compile(r"[^\W\d_]{5,}")  # letters only, 5+ of them
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "at",
        "by",
        "de",
        "del",
        "der",
        "des",
        "die",
        "du",
        "el",
        "for",
        "from",
        "in",
        "is",
        "it",
        "la",
        "le",
        "les",
        "of",
        "on",
        "or",
        "the",
        "to",
    ]
)


@dataclass(frozen=True)
class Query:
    kind: str
    q: str
    expected_id: int
    filters: dict[str, Any] = field(default_factory=dict)
    title: str = ""  # the target's title, for reading misses; not sent to engines

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @staticmethod
    def from_json(line: str) -> Query:
        data = json.loads(line)
        return Query(
            kind=data["kind"],
            q=data["q"],
            expected_id=int(data["expected_id"]),
            filters=dict(data.get("filters") or {}),
            title=data.get("title", ""),
        )


def weighted_sample(
    rng: random.Random, movies: Sequence[Movie], n: int, min_votes: int
) -> list[Movie]:
    """Up to ``n`` distinct movies, P proportional to log(1 + votes) (Efraimidis-Spirakis)."""
    eligible = [m for m in movies if m.votes >= min_votes]
    # a 0-vote movie gets a tiny weight instead of a division by zero: it comes last
    keyed = [(rng.random() ** (1.0 / max(math.log1p(max(m.votes, 0)), 1e-6)), m) for m in eligible]
    keyed.sort(key=lambda km: km[0], reverse=True)
    return [m for _, m in keyed[:n]]


def make_exact(rng: random.Random, movie: Movie) -> Query | None:
    return Query("exact", movie.title, movie.id)


def make_prefix(rng: random.Random, movie: Movie) -> Query | None:
    title = " ".join(movie.title.split())
    words = title.split(" ")
    n = rng.randint(2, 8)
    if len(words) >= 2 and rng.random() < 0.5 and len(words[-1]) > n:
        typed = " ".join(words[:-1]) + " " + words[-1][:n]  # "the mat"
    elif len(title) > n:
        typed = title[:n]  # as typed so far, mid-word or not
    else:
        return None
    typed = typed.strip().lower()
    if len(typed) < 2 or typed == title.lower():
        return None
    return Query("prefix", typed, movie.id)


def one_edit(rng: random.Random, word: str) -> str:
    """Return ``word`` with exactly one random edit; never returns ``word`` itself."""
    letters = string.ascii_lowercase
    while True:
        op = rng.choice(("insert", "delete", "substitute", "transpose"))
        i = rng.randrange(len(word))
        if op == "insert":
            out = word[:i] + rng.choice(letters) + word[i:]
        elif op == "delete":
            out = word[:i] + word[i + 1 :]
        elif op == "substitute":
            repl = rng.choice([c for c in letters if c != word[i].lower()])
            out = word[:i] + (repl.upper() if word[i].isupper() else repl) + word[i + 1 :]
        else:
            if i == len(word) - 1 or word[i].lower() == word[i + 1].lower():
                continue
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if out.lower() != word.lower():
            return out


def make_typo(rng: random.Random, movie: Movie) -> Query | None:
    spans = [m.span() for m in _ALPHA_WORD.finditer(movie.title)]
    # a word is eligible only if it is letters through and through (no "R2D2s", no "1999th")
    spans = [(a, b) for a, b in spans if _whole_token(movie.title, a, b)]
    if not spans:
        return None
    a, b = rng.choice(spans)
    q = movie.title[:a] + one_edit(rng, movie.title[a:b]) + movie.title[b:]
    return Query("typo", q, movie.id)


def _words_of(text: str) -> tuple[str, ...]:
    """Lower-case alphanumeric words, to compare titles the way a search engine would."""
    return tuple(re.findall(r"[a-z0-9]+", text.lower().replace("'", "")))


def _whole_token(text: str, a: int, b: int) -> bool:
    before = text[a - 1] if a > 0 else " "
    after = text[b] if b < len(text) else " "
    return not (before.isalnum() or after.isalnum())


def make_word_order(rng: random.Random, movie: Movie) -> Query | None:
    words = movie.title.split()
    if len(words) < 2 or len(set(words)) < 2:
        return None
    shuffled = words[:]
    while shuffled == words:
        rng.shuffle(shuffled)
    return Query("word_order", " ".join(shuffled), movie.id)


def make_filtered(rng: random.Random, movie: Movie) -> Query | None:
    words = movie.title.split()
    content = [w for w in words if w.lower().strip(string.punctuation) not in _STOPWORDS]
    pool = content or words
    k = min(len(pool), rng.randint(2, 3))
    picked = sorted(rng.sample(range(len(pool)), k))
    q = " ".join(pool[i] for i in picked)
    options: list[dict[str, Any]] = []
    if movie.year is not None:
        lo, hi = movie.year - rng.randint(0, 5), movie.year + rng.randint(0, 5)
        options.append({"year_from": lo, "year_to": hi})
    if movie.genres:
        options.append({"genres": rng.choice(movie.genres)})
    if not options or not q.strip(string.punctuation + " "):
        return None
    return Query("filtered", q, movie.id, rng.choice(options))


MAKERS: dict[str, Callable[[random.Random, Movie], Query | None]] = {
    "exact": make_exact,
    "prefix": make_prefix,
    "typo": make_typo,
    "word_order": make_word_order,
    "filtered": make_filtered,
}


def generate(
    movies: Sequence[Movie], per_kind: int = 200, seed: int = 42, min_votes: int = 100
) -> list[Query]:
    """Return ``per_kind`` queries of each kind (fewer only if the catalog runs out)."""
    queries: list[Query] = []
    # A shuffle that spells another movie's title ("Night Mother" from Mother Night
    # is 'Night, Mother') is an exact query for that movie, not a word-order one.
    titles = {_words_of(movie.title) for movie in movies}
    for kind in KINDS:
        rng = random.Random(f"{seed}:{kind}")  # each kind its own stream: adding one moves none
        made: list[Query] = []
        for movie in weighted_sample(rng, movies, len(movies), min_votes):
            query = MAKERS[kind](rng, movie)
            if kind == "word_order" and query is not None and _words_of(query.q) in titles:
                continue
            if query is not None and query.q.strip():
                made.append(
                    Query(query.kind, query.q, query.expected_id, query.filters, movie.title)
                )
            if len(made) == per_kind:
                break
        queries.extend(made)
    return queries


def write_jsonl(queries: Sequence[Query], path: Path) -> None:
    path.write_text("".join(q.to_json() + "\n" for q in queries), encoding="utf-8")


def read_jsonl(path: Path) -> list[Query]:
    return [
        Query.from_json(line)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def write_paths(queries: Sequence[Query], engine: Engine, path: Path, seed: int = 42) -> int:
    """Distinct request paths, one a line, kinds interleaved (seeded shuffle) so any window of
    the file is a mix; return how many."""
    paths = list(dict.fromkeys(engine.search_path(q.q, q.filters) for q in queries))
    random.Random(f"{seed}:paths").shuffle(paths)
    path.write_text("".join(p + "\n" for p in paths), encoding="ascii")
    return len(paths)


def add_query_set_args(parser: argparse.ArgumentParser) -> None:
    """The options every bench script uses to draw the same seeded query set."""
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--min-votes", type=int, default=100)


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate known-item queries and wrk paths.")
    parser.add_argument("--db", type=Path, default=Path("reelsearch.db"))
    parser.add_argument("--out-dir", type=Path, default=Path("bench-out"))
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--min-votes", type=int, default=100)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    queries = generate(load_movies(args.db), args.per_kind, args.seed, args.min_votes)
    write_jsonl(queries, args.out_dir / "queries.jsonl")
    # Paths don't depend on host or key: those are given to wrk separately.
    write_paths(queries, Typesense("", ""), args.out_dir / "paths-typesense.txt", args.seed)
    write_paths(queries, Reelsearch(""), args.out_dir / "paths-reelsearch.txt", args.seed)
    print(f"wrote {len(queries)} queries and path files to {args.out_dir}")


if __name__ == "__main__":
    main()
