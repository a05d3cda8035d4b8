"""The ``reelsearch`` command: serve, import, generate, search."""

from __future__ import annotations

import argparse
import atexit
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from reelsearch import __version__, compiled
from reelsearch.catalog.guards import ImportRefused
from reelsearch.catalog.progress import Progress, progress_for
from reelsearch.catalog.records import ImportReport
from reelsearch.cli_interruptions import Terminated, interrupted_by_sigterm, quiet_when_unread
from reelsearch.config import Settings, check_env_names
from reelsearch.config_checks import ENV_PREFIX
from reelsearch.errors import CatalogNotImported, ConfigError, ImportFailed, ReelsearchError


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    # Output nobody reads any more (`| head`) is dropped, not raised mid-import.
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = quiet_when_unread(sys.stdout), quiet_when_unread(sys.stderr)
    try:
        with interrupted_by_sigterm(args.run in _WITH_PROGRESS):
            _run(args)
    finally:
        sys.stdout, sys.stderr = streams


def _run(args: argparse.Namespace) -> None:
    progress = progress_for(sys.stderr, quiet=getattr(args, "quiet", False))
    try:
        check_env_names(os.environ)
        if args.run in _WITH_PROGRESS:
            args.run(args, progress)
        else:
            args.run(args)
    except ImportRefused as exc:
        progress.close()
        print(f"reelsearch: import refused; the catalog is unchanged and still served.\n"
              f"  {exc}", file=sys.stderr)  # fmt: skip
        raise SystemExit(1) from None
    except ImportFailed as exc:
        progress.close()
        print(f"reelsearch: import failed and was rolled back; the catalog is unchanged.\n"
              f"  {exc}", file=sys.stderr)  # fmt: skip
        if exc.report is not None:
            print(exc.report.render(), file=sys.stderr)
        raise SystemExit(1) from None
    except ReelsearchError as exc:
        progress.close()
        print(f"reelsearch: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt as exc:
        progress.close()
        number = exc.signal if isinstance(exc, Terminated) else signal.SIGINT
        committed = progress.committed_version
        done = (f"the import had committed catalog version {committed}" if committed else
                "an import in progress was rolled back: the catalog is unchanged")  # fmt: skip
        print(f"reelsearch: interrupted ({signal.Signals(number).name}); {done}", file=sys.stderr)
        raise SystemExit(128 + number) from None
    progress.close()


def _parser() -> argparse.ArgumentParser:
    # Global options are accepted before or after the command: each (sub)parser
    # has them, and SUPPRESS keeps a subparser from resetting what an earlier
    # one parsed.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="catalog URL (default: REELSEARCH_DATABASE_URL)")  # fmt: skip
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress output (errors and results still print)")  # fmt: skip
    parser = argparse.ArgumentParser(prog="reelsearch", description=__doc__, parents=[common])
    parser.add_argument("--version", action="version", version=f"reelsearch {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(group: Any, name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(name, help=help, parents=[common])
        return parser

    serve = command(commands, "serve", "run the HTTP API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (default 8000)")
    serve.add_argument("--workers", type=_positive_int, help="worker processes (default 2)")
    serve.set_defaults(run=_serve)

    imports = command(commands, "import", "load a catalog (replaces the current one)")
    sources = imports.add_subparsers(required=True, metavar="SOURCE")
    sample = command(sources, "sample", "the bundled ggplot2movies sample (58,788 movies)")
    sample.set_defaults(run=_import_sample)
    imdb = command(sources, "imdb", "IMDb dumps: title.basics[, title.ratings, title.akas]")
    imdb.add_argument("files", nargs="+", type=_existing_file)
    imdb.add_argument("--kinds", type=_kinds,
                      help="comma-separated titleTypes to keep (default: all)")  # fmt: skip
    imdb.set_defaults(run=_import_imdb)
    movielens = command(sources, "movielens", "a MovieLens movies.csv")
    movielens.add_argument("file", type=_existing_file)
    movielens.set_defaults(run=_import_movielens)
    jsonl = command(sources, "jsonl", "JSON lines: one movie document a line (as POST "
                    "/v1/movies/bulk takes them)")  # fmt: skip
    jsonl.add_argument("file", type=_existing_file)
    jsonl.set_defaults(run=_import_jsonl)
    for source in (sample, imdb, movielens, jsonl):
        source.add_argument(
            "--allow-shrink",
            action="store_true",
            help="accept a new catalog much smaller than the current one "
            "(refused by default past REELSEARCH_IMPORT_MAX_SHRINK)",
        )

    generate = command(commands, "generate", "write synthetic IMDb-format dumps")
    generate.add_argument("out_dir", type=Path)
    generate.add_argument("--titles", type=_non_negative_int, default=1_000_000)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--no-akas", action="store_true")
    generate.set_defaults(run=_generate)

    search = command(commands, "search", "search the catalog from the terminal")
    search.add_argument("query", nargs="+")
    search.add_argument("--limit", type=_limit, default=10, help="hits to show (1-100)")
    search.add_argument("--json", action="store_true", help="print the API's JSON")
    search.set_defaults(run=_search)

    cache = command(commands, "cache", "the shared result cache: stats, clear, warm")
    cache.add_argument("action", choices=("stats", "clear", "warm"))
    cache.add_argument("--top", type=int, default=0, help="warm: how many (default: setting)")
    cache.set_defaults(run=_cache)

    upgrade = command(commands, "upgrade", "bring a catalog imported by an older release to "
                      "this release's schema, in place (no import)")  # fmt: skip
    upgrade.set_defaults(run=_upgrade)

    profile = command(commands, "profile", "profile a workload in process (pyinstrument)")
    profile.add_argument("--queries", type=Path,
                         help="request paths, one a line (default: a catalog mix)")  # fmt: skip
    profile.add_argument("--titles", type=int, default=200, help="titles of the built-in mix")
    profile.add_argument("--repeat", type=int, default=1, help="run the workload N times")
    profile.add_argument("--out", type=Path, default=Path("profile.html"))
    profile.set_defaults(run=_profile)

    loadtest = command(commands, "loadtest", "run a load-test scenario (Locust, headless)")
    loadtest.add_argument("--scenario", required=True,
                          choices=["normal", "peak", "stress", "error", "recovery"])  # fmt: skip
    loadtest.add_argument("--host", default="http://127.0.0.1:8000")
    loadtest.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    loadtest.add_argument("--out", type=Path, required=True, help="directory for the report")
    loadtest.add_argument("--users", type=int, help="visitors at the plateau (scenario default)")
    loadtest.add_argument("--error-share", type=float, default=0.2)
    loadtest.add_argument("--p99-target-ms", type=float, default=250.0)
    loadtest.add_argument("--restart-command", default="",
                          help="recovery: a shell command that restarts a dependency")  # fmt: skip
    loadtest.add_argument("--restart-at", type=float, help="recovery: seconds into the load")
    loadtest.add_argument("--allow-remote", action="store_true", help="allow a non-loopback host")
    loadtest.set_defaults(run=_loadtest)
    return parser


def _positive_int(raw: str) -> int:
    return _int_in(raw, 1, None)


def _non_negative_int(raw: str) -> int:
    return _int_in(raw, 0, None)


def _port(raw: str) -> int:
    return _int_in(raw, 1, 65535)


def _limit(raw: str) -> int:
    return _int_in(raw, 1, 100)


def _int_in(raw: str, low: int, high: int | None) -> int:
    """``raw`` as an int in [low, high]; otherwise argparse's usage error (exit 2)."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise argparse.ArgumentTypeError(f"{value} is out of range: must be {bounds}")
    return value


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{raw!r} is not a file")
    return path


def _kinds(raw: str) -> frozenset[str]:
    kinds = frozenset(kind.strip() for kind in raw.split(",") if kind.strip())
    if not kinds:
        raise argparse.ArgumentTypeError("give at least one titleType, e.g. movie,tvMovie")
    return kinds


def _cache(args: argparse.Namespace) -> None:
    from reelsearch.cache.commands import run_cache_command

    print(run_cache_command(_settings(args), args.action, args.top))


def _upgrade(args: argparse.Namespace) -> None:
    from reelsearch.catalog.upgrade import upgrade_catalog

    print(f"reelsearch: {upgrade_catalog(_settings(args))}")


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    if getattr(args, "allow_shrink", False):
        overrides["import_max_shrink"] = 1.0
    url = getattr(args, "database_url", None)
    return Settings.from_env(os.environ, database_url=url, **overrides)


def _serve(args: argparse.Namespace) -> None:
    # Metrics summed over the workers (observability/metrics.py): each writes its values
    # to files in a directory fresh for this run. prometheus-client reads the variable
    # when first imported, and granian forks the workers from this process: so it is set
    # before anything (reelsearch.serving included) imports it.
    metrics_dir = tempfile.mkdtemp(prefix="reelsearch-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    atexit.register(_remove_in, os.getpid(), metrics_dir)
    from reelsearch.serving import check_address_free, serve

    settings = _settings(args, host=args.host, port=args.port, workers=args.workers)
    # A taken port is the likelier mistake, and cheaper to find than a bad catalog.
    check_address_free(settings.host, settings.port)
    from reelsearch.catalog.upgrade import check_servable, shown_url

    warning = check_servable(settings)
    if warning is not None:
        print(f"reelsearch: warning: {warning}", file=sys.stderr)
    # Worker processes build their own Settings from the environment.
    os.environ[ENV_PREFIX + "DATABASE_URL"] = settings.database_url
    where = f"http://{settings.host}:{settings.port}"
    print(f"reelsearch: serving {shown_url(settings.database_url)} on {where}"
          f" with {settings.workers} workers; {compiled.describe()}", file=sys.stderr)  # fmt: skip
    serve(settings)


def _remove_in(pid: int, directory: str) -> None:
    """Remove ``directory`` at exit of process ``pid`` only (not of a forked worker)."""
    if os.getpid() == pid:
        shutil.rmtree(directory, ignore_errors=True)


def _import_sample(args: argparse.Namespace, progress: Progress) -> None:
    from reelsearch.catalog.importers.sample import import_sample

    _print_report(progress, import_sample(_settings(args), progress=progress))


def _import_imdb(args: argparse.Namespace, progress: Progress) -> None:
    from reelsearch.catalog.importers.imdb import import_imdb

    _print_report(
        progress,
        import_imdb(_settings(args), args.files, kinds=args.kinds, progress=progress),
    )


def _import_movielens(args: argparse.Namespace, progress: Progress) -> None:
    from reelsearch.catalog.importers.movielens import import_movielens

    _print_report(progress, import_movielens(_settings(args), args.file, progress=progress))


def _import_jsonl(args: argparse.Namespace, progress: Progress) -> None:
    from reelsearch.catalog.importers.jsonl import import_jsonl

    _print_report(progress, import_jsonl(_settings(args), args.file, progress=progress))


def _print_report(progress: Progress, report: ImportReport) -> None:
    progress.close()
    print(report.render())


def _generate(args: argparse.Namespace, progress: Progress) -> None:
    from reelsearch.catalog.imdb_generate import write_imdb_dataset

    started = time.perf_counter()
    progress.begin("generating", total=args.titles, unit="titles")
    dataset = write_imdb_dataset(args.out_dir, args.titles, seed=args.seed,
                                 akas=not args.no_akas, on_progress=progress.update_to)  # fmt: skip
    progress.end()
    progress.close()
    files = [p for p in (dataset.basics, dataset.ratings, dataset.akas) if p is not None]
    print(f"wrote {dataset.titles:,} titles in {time.perf_counter() - started:.1f} s: "
          + " ".join(str(p) for p in files))  # fmt: skip


# Commands that take the progress display as a second argument.
_WITH_PROGRESS = {_import_sample, _import_imdb, _import_movielens, _import_jsonl, _generate}


def _search(args: argparse.Namespace) -> None:
    from reelsearch.catalog.upgrade import shown_url
    from reelsearch.search.backends import open_blocking_engine
    from reelsearch.search.query import parse_search

    settings = _settings(args)
    try:
        engine = open_blocking_engine(settings)
    except CatalogNotImported:  # the same, naming the database
        raise CatalogNotImported(shown_url(settings.database_url)) from None
    try:
        started = time.perf_counter()
        query = parse_search([("q", " ".join(args.query)), ("limit", str(args.limit))])
        result = engine.search(query)
        took = (time.perf_counter() - started) * 1000
    finally:
        engine.close()
    if args.json:
        print(orjson.dumps({"hits": result.hits, "total": result.total}).decode())
        return
    for hit in result.hits:
        year = hit["year"] if hit["year"] is not None else "----"
        rating = f"{hit['rating']:.1f}" if hit["rating"] is not None else "  - "
        print(f"{hit['id']:>9}  {year}  {rating}  {hit['votes']:>8,}  {hit['title']}")
    exact = "" if result.total_is_exact else "+"
    print(f"{result.total:,}{exact} matches in {took:.1f} ms", file=sys.stderr)


def _profile(args: argparse.Namespace) -> None:
    from reelsearch.observability.profiling import builtin_workload, profile_workload

    settings = _settings(args, access_log=False, slow_request_ms=0.0)
    if args.queries:
        targets = [line.strip() for line in args.queries.read_text().splitlines() if line.strip()]
    else:
        targets = builtin_workload(settings, args.titles)
    ran = profile_workload(settings, targets * args.repeat, args.out)
    print(f"{ran['requests']} requests in {ran['seconds']} s, statuses {ran['statuses']}; "
          f"profile written to {ran['report']}")  # fmt: skip


def _loadtest(args: argparse.Namespace) -> None:
    from reelsearch.loadtest.runner import run_loadtest
    from reelsearch.loadtest.scenarios import scenario

    try:
        plan = scenario(args.scenario, args.duration, users=args.users,
                        restart_command=args.restart_command, restart_at=args.restart_at,
                        error_share=args.error_share, p99_target_ms=args.p99_target_ms)  # fmt: skip
        result = run_loadtest(plan, args.host, args.out, allow_remote=args.allow_remote,
                              command=shlex.join(["reelsearch", *sys.argv[1:]]))  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    summary = result["summary"]
    print(f"{args.scenario}: {summary['requests']} requests, achieved {summary['achieved_rps']} "
          f"of {summary['target_rps']} req/s intended, p50/p95/p99 {summary['p50_ms']}/"
          f"{summary['p95_ms']}/{summary['p99_ms']} ms, errors {summary['error_rate']:.2%}; "
          f"report in {args.out / 'report.html'}")  # fmt: skip
    for key in ("knee", "recovery"):
        if key in result:
            print(f"{key}: {orjson.dumps(result[key]).decode()}")
