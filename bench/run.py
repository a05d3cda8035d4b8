"""One command: reelsearch vs Typesense on the same catalog and queries, recall then load.

Why: numbers from different runs, machines or query sets cannot be compared. This starts both
servers on 127.0.0.1 in one run, loads Typesense from reelsearch's own catalog, generates one
seeded query set, measures known-item recall and then wrk throughput/latency, prints markdown
tables (optionally writing them, with the command line, to ``--out``), and stops every server
it started, whatever happens.

    python bench/run.py --db ./reelsearch.db --out bench-report.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import queries as query_gen
from catalog import load_movies
from engines import Engine, Reelsearch
from load import Target, health_paths, load_table, measure, parse_concurrency, ratio_table
from peer_typesense import TypesenseServer
from procs import ServerProcess, free_port
from queries import Query
from recall import evaluate, latency_table, recall_table, write_misses

HOST = "127.0.0.1"
DEFAULT_CMD = "reelsearch serve --host {host} --port {port} --workers {workers}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", type=Path, default=Path("reelsearch.db"), help="reelsearch catalog")
    p.add_argument(
        "--reelsearch-cmd",
        default=DEFAULT_CMD,
        help="command starting reelsearch; {host} {port} {workers} {db} are filled "
        "in, and REELSEARCH_DATABASE_URL is set (default: %(default)s)",
    )
    p.add_argument("--workers", type=int, default=2, help="reelsearch workers (default 2)")
    p.add_argument("--reelsearch-url", help="measure an already running reelsearch instead")
    p.add_argument("--no-reelsearch", action="store_true", help="Typesense alone")
    p.add_argument("--per-kind", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-votes", type=int, default=100)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--runs", type=int, default=3, help="wrk runs per point (median)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded wrk per target")
    p.add_argument("--concurrency", type=parse_concurrency, default=[1, 16, 64])
    p.add_argument(
        "--load-per-kind",
        type=int,
        default=0,
        help="load with a separate, larger query set of this many per kind, drawn "
        "from movies with >= --load-min-votes votes (default 0: replay the "
        "recall queries); raise it until 'passes' <= 1 for cold numbers",
    )
    p.add_argument("--load-min-votes", type=int, default=0)
    p.add_argument("--skip-recall", action="store_true")
    p.add_argument("--skip-load", action="store_true")
    p.add_argument(
        "--workdir",
        type=Path,
        help="keep queries, paths, misses and server logs here (default: temp, removed)",
    )
    p.add_argument("--out", type=Path, help="also write the report (markdown) here")
    p.add_argument("--startup-timeout", type=float, default=60.0)
    return p.parse_args(argv)


@contextmanager
def workdir_for(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="reelsearch-bench-") as tmp:
        yield Path(tmp)


@contextmanager
def reelsearch_server(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, float]]:
    """Yield (base URL, seconds to healthy) of reelsearch, started here unless already running."""
    if args.reelsearch_url:
        yield args.reelsearch_url.rstrip("/"), 0.0
        return
    port = free_port(HOST)
    db = args.db.resolve()
    cmd = args.reelsearch_cmd.format(host=HOST, port=port, workers=args.workers, db=db)
    env = dict(os.environ, REELSEARCH_DATABASE_URL=f"sqlite:///{db}")
    proc = ServerProcess("reelsearch", shlex.split(cmd), workdir / "reelsearch.log", env)
    base_url = f"http://{HOST}:{port}"
    try:
        proc.start()
        waited = proc.wait_healthy(f"{base_url}/health", args.startup_timeout)
        yield base_url, waited
    finally:
        proc.stop()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the with-blocks: every server gets stopped


def _loadavg() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def recall_section(
    engines: list[Engine], qs: list[Query], args: argparse.Namespace, workdir: Path
) -> str:
    results = [evaluate(engine, qs) for engine in engines]
    write_misses(results, workdir / "misses.jsonl")
    return (
        f"\n## Known-item recall\n\n{len(qs)} queries, seed {args.seed}, targets drawn with "
        f"P ∝ log(1+votes) among movies with ≥ {args.min_votes} votes.\n\n"
        + recall_table(results)
        + "\n\nLatency of those queries, sent one at a time (client side, keep-alive):\n\n"
        + latency_table(results)
    )


def load_section(targets: list[Target], n_paths: int, args: argparse.Namespace) -> str:
    print(
        f"\nload: {len(targets)} targets, c={args.concurrency}, {args.runs} runs of "
        f"{args.duration} s",
        flush=True,
    )
    res = measure(targets, args.concurrency, args.duration, args.runs, args.warmup)
    text = (
        f"\n## HTTP load (wrk)\n\nwrk, threads = min(2, c), {args.duration} s per run, median "
        f"of {args.runs} runs, {args.warmup} s warm-up per target; {n_paths:,} distinct search "
        "paths per engine replayed in a loop ('passes': times through them per run); no "
        "reelsearch cache yet, Typesense's use_cache is off by default.\n\n"
        + load_table(res, targets, args.concurrency)
    )
    if any(t.name == "reelsearch search" for t in targets):
        text += "\n\n" + ratio_table(res, "reelsearch search", "typesense search", args.concurrency)
    return text


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    load_before = _loadavg()
    command = "python " + shlex.join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    sections: list[str] = []

    def emit(text: str) -> None:
        print(text, flush=True)
        sections.append(text)

    movies = load_movies(args.db)
    with workdir_for(args.workdir) as workdir, TypesenseServer() as ts:
        ts.load(movies)
        setup = [
            f"- command: `{command}`",
            f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}; machine: {os.cpu_count()} CPUs, "
            f"{platform.platform()}, Python {platform.python_version()}; load average before "
            f"start {load_before} (other load on the machine skews every number)",
            f"- catalog: `{args.db}`, {len(movies):,} movies",
            f"- Typesense 0.24.1: healthy {ts.timings.startup_s:.2f} s after start; imported "
            f"{ts.timings.documents:,} documents in {ts.timings.import_s:.2f} s",
        ]
        rs_cm = nullcontext(None) if args.no_reelsearch else reelsearch_server(args, workdir)
        with rs_cm as rs:
            engines: list[Engine] = [ts.engine]
            if rs is not None:
                rs_url, waited = rs
                how = "" if args.reelsearch_url else f" (`{args.reelsearch_cmd}`)"
                setup.append(
                    f"- reelsearch: `{rs_url}`, healthy {waited:.2f} s after start{how}"
                    f", workers={args.workers}"
                )
                engines.append(Reelsearch(rs_url))
            emit("# reelsearch vs Typesense\n\n" + "\n".join(setup))

            qs = query_gen.generate(movies, args.per_kind, args.seed, args.min_votes)
            query_gen.write_jsonl(qs, workdir / "queries.jsonl")
            if not args.skip_recall:
                emit(recall_section(engines, qs, args, workdir))

            if not args.skip_load:
                load_qs = qs
                if args.load_per_kind:
                    load_qs = query_gen.generate(
                        movies, args.load_per_kind, args.seed, args.load_min_votes
                    )
                paths = {e.name: workdir / f"paths-{e.name}.txt" for e in engines}
                n_paths = [
                    query_gen.write_paths(load_qs, e, paths[e.name], args.seed) for e in engines
                ]
                targets = [
                    Target("typesense search", ts.base_url, paths["typesense"], ts.engine.headers)
                ]
                if rs is not None:
                    targets += [
                        Target("reelsearch search", rs[0], paths["reelsearch"]),
                        Target("reelsearch /health", rs[0], health_paths(workdir)),
                    ]
                emit(load_section(targets, n_paths[0], args))
            emit(f"\nLoad average at the end: {_loadavg()}")
            if args.workdir:
                emit(f"\nArtifacts (queries, paths, misses, reelsearch log): `{workdir}`")
    if args.out:
        args.out.write_text("\n".join(sections) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
