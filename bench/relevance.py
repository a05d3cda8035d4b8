"""The relevance set (issue 3) against reelsearch and Typesense, same queries, same run.

Why: "finds what people mean" (a misspelling, "spider man" for *Spiderman*, "godfather 2" for
*Part II*, a foreign title, a synonym, a year, ``"phrase"`` and ``-word``) is only a claim next
to an engine given the same help. This starts Typesense 0.24.1 with its best configuration for
those features (alternate titles as a second field, our synonyms through its synonyms API, the
numerals as synonyms, ``split_join_tokens``), starts reelsearch on the SQLite catalog (and on
each ``--pg-url``), asks every engine each query of the hand-written set over HTTP, one at a
time, and prints recall@1 and recall@10 per category, marking what Typesense cannot do.

The set is JSON lines, ``{"q", "category", "expect": "ggplot2movies:<rowname>", "title",
"year", "how"}``; ``expect`` is a ``movies.source_key``, mapped to the catalog's id (which is
also Typesense's document id).

    python bench/relevance.py --db /tmp/rs.db --out relevance.md
    python bench/relevance.py --db /tmp/rs.db --pg-url postgresql+asyncpg://postgres@127.0.0.1/rs
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import parse_qsl

import httpx

from catalog import load_alt_titles, load_movies, load_source_ids
from engines import Engine, Typesense
from mdtable import emit_report, markdown_table
from peer_typesense import TypesenseServer, parse_synonym_rules
from procs import code_version
from queries import Query
from recall import EngineRecall, KindScore, evaluate, write_misses
from run import _exit_on_sigterm, _loadavg, add_target_args, start_reelsearch_targets, workdir_for

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SET = REPO / "tests" / "relevance" / "sample_queries.jsonl"
DEFAULT_SYNONYMS = REPO / "src" / "reelsearch" / "search" / "rules" / "synonyms.txt"

# Each category of the set, and whether Typesense 0.24.1 has the feature it tests (as set up
# here). Its figures are printed either way; "no" means it can only get there by luck.
CATEGORIES: dict[str, str] = {
    "misspelling": "yes: typo tolerance (its defaults)",
    "split_join": "yes: `split_join_tokens`",
    "sequel": "yes: numerals loaded as synonyms",
    "foreign": "yes: `alt_titles` in `query_by`",
    "partial": "yes: prefix search, dropping words",
    "synonym": "yes: our synonyms.txt loaded",
    "year": "no: a year in `q` is one more word",
    "operators": 'yes: `"phrase"` and `-word` in `q`',
}
# Sequels: "rocky 2" for "Rocky II". Typesense has no numeral rule, so it gets these multi-way
# synonyms (2..20; "i" is left out, as it is mostly the pronoun).
ROMAN = ["ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi"]
ROMAN += ["xii", "xiii", "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx"]
NUMERAL_SYNONYMS = [{"synonyms": [str(n), roman]} for n, roman in enumerate(ROMAN, start=2)]
# Typesense's settings, each one a column (one server, same collection). Neither split/join
# mode is best at both R@1 and R@10 on the set (README), so both are asked: "always" joins and
# splits words on every query, "fallback" (its default) only when the words as typed find nothing.
TYPESENSE_VARIANTS = {
    "typesense": {"split_join_tokens": "always"},
    "typesense-fallback": {"split_join_tokens": "fallback"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", type=Path, default=Path("reelsearch.db"), help="SQLite catalog")
    p.add_argument("--set", type=Path, default=DEFAULT_SET, help="the relevance set (JSONL)")
    p.add_argument("--synonyms", type=Path, default=DEFAULT_SYNONYMS, help="for Typesense")
    p.add_argument(
        "--typesense",
        action="append",
        type=parse_variant,
        default=[],
        metavar="NAME:PARAMS",
        help="ask Typesense with these extra search parameters (a query string, e.g. "
        "'ts-exhaustive:split_join_tokens=always&exhaustive_search=true'; may be empty) as "
        f"column NAME; repeatable; replaces the default {TYPESENSE_VARIANTS}",
    )
    p.add_argument("--no-numerals", action="store_true", help="no numeral synonyms for Typesense")
    add_target_args(p)
    p.add_argument("--workdir", type=Path, help="keep misses.jsonl and server logs here")
    p.add_argument("--out", type=Path, help="also write the report (markdown) here")
    return p.parse_args(argv)


def read_set(path: Path, ids: Mapping[str, int]) -> list[Query]:
    """The set as queries whose ``kind`` is the category; every ``expect`` must be in the
    catalog (a set that silently shrinks would read as better recall)."""
    queries: list[Query] = []
    unknown: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        case = json.loads(line)
        expect = str(case["expect"])
        if expect not in ids:
            unknown.append(f"line {number}: {expect}")
            continue
        title = f"{case.get('title', '')} ({case.get('year', '?')})"
        queries.append(Query(str(case["category"]), str(case["q"]), ids[expect], title=title))
    if unknown:
        raise SystemExit(f"{path}: {len(unknown)} expected movies not in the catalog: {unknown}")
    return queries


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:a=1&b=2`` as (NAME, {"a": "1", "b": "2"})."""
    name, sep, query = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PARAMS, got {text!r}")
    return name, dict(parse_qsl(query, strict_parsing=bool(query)))


def check_accepted(engine: Typesense) -> None:
    """Fail now if Typesense refuses the search (e.g. a ``query_by`` field it lacks). It
    ignores unknown parameters and bad values silently: README says how each was checked."""
    resp = httpx.get(engine.base_url + engine.search_path("matrix", {}), headers=engine.headers)
    if resp.status_code != 200:
        raise SystemExit(f"Typesense refused {dict(engine.extra_params)}: {resp.text[:300]}")


def _pct(score: KindScore, at: int) -> str:
    if not score.n:
        return "-"
    return f"{100.0 * (score.at1 if at == 1 else score.at10) / score.n:.1f}%"


def _sum(scores: Sequence[KindScore]) -> KindScore:
    out = KindScore()
    for s in scores:
        out.n, out.at1, out.at10 = out.n + s.n, out.at1 + s.at1, out.at10 + s.at10
        out.errors += s.errors
    return out


def relevance_table(results: Sequence[EngineRecall], notes: Mapping[str, str] = CATEGORIES) -> str:
    """One row per category (the set's order, then any other), then all of them, then only
    the ones Typesense supports (``notes`` starting "yes"); R@1 and R@10 per engine."""
    seen = {k for r in results for k in r.by_kind}
    cats = [c for c in notes if c in seen] + sorted(seen - set(notes))
    supported = [c for c in cats if notes.get(c, "no").startswith("yes")]
    headers = ["category", "n", "Typesense has it"]
    for r in results:
        headers += [f"{r.engine} R@1", f"{r.engine} R@10"]
    with_errors = any(s.errors for r in results for s in r.by_kind.values())
    if with_errors:
        headers += [f"{r.engine} errors" for r in results]
    groups = [(c, [c], notes.get(c, "no: not a category bench/relevance.py knows")) for c in cats]
    groups += [("**all**", cats, ""), ("**all Typesense supports**", supported, "")]
    rows: list[list[object]] = []
    for label, members, note in groups:
        scores = [_sum([r.by_kind.get(c, KindScore()) for c in members]) for r in results]
        row: list[object] = [label, scores[0].n, note]
        for s in scores:
            row += [_pct(s, 1), _pct(s, 10)]
        if with_errors:
            row += [s.errors for s in scores]
        rows.append(row)
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    command = "python " + " ".join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    movies = load_movies(args.db)
    alt_titles = load_alt_titles(args.db)
    queries = read_set(args.set, load_source_ids(args.db))
    rules = parse_synonym_rules(args.synonyms.read_text(encoding="utf-8"))
    numerals = [] if args.no_numerals else NUMERAL_SYNONYMS
    notes = dict(CATEGORIES)
    if args.no_numerals:
        notes["sequel"] = "no: numerals not loaded (--no-numerals)"
    variants = dict(args.typesense) or TYPESENSE_VARIANTS
    load_before = _loadavg()
    with workdir_for(args.workdir) as workdir, TypesenseServer() as ts, ExitStack() as servers:
        ts.load(movies, alt_titles=alt_titles)
        ts.load_synonyms(rules + numerals)
        typesenses = [
            Typesense(ts.base_url, ts.api_key, name, query_by="title,alt_titles", extra_params=p)
            for name, p in variants.items()
        ]
        for typesense in typesenses:
            check_accepted(typesense)
        rs_engines, rs_setup = start_reelsearch_targets(args, movies, workdir, servers)
        engines: list[Engine] = [*typesenses, *rs_engines]
        by_cat: dict[str, int] = {}
        for q in queries:
            by_cat[q.kind] = by_cat.get(q.kind, 0) + 1
        setup = [
            f"- command: `{command}`",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}; load average {load_before}",
            f"- catalog: `{args.db}`, {len(movies):,} movies, "
            f"{sum(map(len, alt_titles.values())):,} alternate titles of {len(alt_titles):,} "
            f"movies; code: {code_version()}",
            f"- set: `{args.set}`, {len(queries)} queries ("
            + ", ".join(f"{c} {n}" for c, n in by_cat.items())
            + ")",
            "- Typesense 0.24.1: `query_by=title,alt_titles`, "
            "`sort_by=_text_match:desc,votes:desc`, `prefix=true`; per column: "
            + "; ".join(
                f"{name}: " + (", ".join(f"`{k}={v}`" for k, v in p.items()) or "no more")
                for name, p in variants.items()
            )
            + f"; {len(rules)} synonym rules from `{args.synonyms.name}` + {len(numerals)} "
            "numeral pairs; typo settings at its defaults",
            *rs_setup,
        ]
        results = [evaluate(engine, queries) for engine in engines]
        write_misses(results, workdir / "misses.jsonl")
        report = (
            "## Relevance set: recall per category\n\n"
            + "\n".join(setup)
            + "\n\n"
            + relevance_table(results, notes)
            + f"\n\nLoad average at the end: {_loadavg()}"
        )
        if args.workdir:
            report += (
                f"\n\nMisses (every query whose movie was not first): `{workdir}/misses.jsonl`"
            )
    emit_report(report, args.out)


if __name__ == "__main__":
    main()
