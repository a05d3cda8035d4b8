"""HTTP throughput and latency of each target under wrk, at several concurrencies, side by side.

Why: "fast" is a claim about a server under load, so it is measured with a real load generator
(wrk) against the running servers, the same request mix for both engines (bench/wrk/paths.lua
cycles through the generated query paths), several runs per point with the median reported.
reelsearch's trivial ``/health`` runs too: it is the ceiling the HTTP stack allows, and shows
how much of a search's cost is the search itself.

Both engines run uncached: reelsearch has no cache yet and Typesense's ``use_cache`` is off by
default; the paths file is replayed as generated (about 1000 distinct queries by default).

    python bench/load.py --typesense-url URL --typesense-key KEY --typesense-paths P \
        --reelsearch-url URL --reelsearch-paths P --duration 10 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mdtable import markdown_table

LUA = Path(__file__).resolve().parent / "wrk" / "paths.lua"
MARKER = "BENCH_RESULT "


@dataclass(frozen=True)
class Target:
    name: str  # a row label, e.g. "typesense search"
    base_url: str
    paths_file: Path
    headers: Mapping[str, str] = field(default_factory=dict)

    def path_count(self) -> int:
        with open(self.paths_file, encoding="ascii") as f:
            return sum(1 for line in f if line.strip())


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_us: int
    p99_us: int
    requests: int
    errors: int  # socket errors + timeouts + non-2xx/3xx answers
    # Share of the machine's CPU time the hypervisor gave to other guests during the run
    # (/proc/stat "steal"): a vCPU stolen for tens of ms stalls every request of the
    # process it was running, so a run's p99 follows it on a shared virtual machine.
    steal: float = 0.0
    # p50/p99 are wrk's, corrected for coordinated omission (bench/wrk/paths.lua); these
    # are each request's own latency, timed where every wrk thread has one connection
    # (c=1 here), else None.
    raw_p50_us: int | None = None
    raw_p99_us: int | None = None


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat's first line), or [] where there are none."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def steal_share(before: Sequence[int], after: Sequence[int]) -> float:
    """The steal share of the CPU time between two ``cpu_times()`` readings (0 if unknown)."""
    if len(before) < 8 or len(after) < 8:
        return 0.0
    spent = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(spent[:8])  # user .. steal; guest time is inside user already
    return spent[7] / total if total > 0 else 0.0


def run_wrk(
    target: Target,
    connections: int,
    duration_s: int,
    wrk: str = "wrk",
    timeout_s: int = 10,
    raw: bool = False,
) -> WrkResult:
    """Run wrk once against ``target``; return its parsed summary.

    ``raw``: one wrk thread per connection, so paths.lua times every request itself
    (``raw_p50_us``/``raw_p99_us``) at any concurrency; more threads than cores, so the
    client's own CPU differs from the default runs' (compare raw runs with raw runs)."""
    # 2 cores: more wrk threads only steal CPU (c=1 is one thread, one connection: timed).
    threads = connections if raw else max(1, min(2, connections))
    seconds = max(1, round(duration_s))  # wrk takes whole seconds
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        str(LUA),
    ]
    for key, value in target.headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv += [target.base_url, "--", str(target.paths_file), str(threads), str(connections)]
    before = cpu_times()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {argv}\n{proc.stdout}{proc.stderr}")
    return replace(parse_wrk_output(proc.stdout), steal=steal_share(before, cpu_times()))


def parse_wrk_output(stdout: str) -> WrkResult:
    """Read the line paths.lua's done() prints (see bench/wrk/paths.lua)."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            errors = sum(
                int(data[k])
                for k in (
                    "connect_errors",
                    "read_errors",
                    "write_errors",
                    "status_errors",
                    "timeouts",
                )
            )
            return WrkResult(
                rps=data["requests"] * 1e6 / max(1, data["duration_us"]),
                p50_us=int(data["p50_us"]),
                p99_us=int(data["p99_us"]),
                requests=int(data["requests"]),
                errors=errors,
                raw_p50_us=data.get("raw_p50_us"),
                raw_p99_us=data.get("raw_p99_us"),
            )
    raise ValueError(f"no {MARKER.strip()} line in wrk output:\n{stdout}")


Results = dict[tuple[str, int], list[WrkResult]]


def measure(
    targets: Sequence[Target],
    concurrencies: Sequence[int],
    duration_s: int,
    runs: int,
    warmup_s: int = 2,
    log: bool = True,
    raw: bool = False,
) -> Results:
    """Run every (target, concurrency) ``runs`` times, interleaved so drift hits all alike
    (``raw``: one wrk thread per connection, every request timed; ``run_wrk``)."""
    for target in targets:
        if warmup_s > 0:
            run_wrk(target, max(concurrencies), warmup_s, raw=raw)
    results: Results = {}
    for run in range(runs):
        for c in concurrencies:
            shift = run % len(targets)  # rotate who goes first
            for target in [*targets[shift:], *targets[:shift]]:
                res = run_wrk(target, c, duration_s, raw=raw)
                results.setdefault((target.name, c), []).append(res)
                if log:
                    print(
                        f"  run {run + 1}/{runs} c={c:<3} {target.name:<22} "
                        f"{res.rps:9.0f} req/s  p50 {res.p50_us / 1000:7.2f} ms  "
                        f"p99 {res.p99_us / 1000:7.2f} ms{_raw_note(res)}  errors {res.errors}  "
                        f"steal {100 * res.steal:.0f}%",
                        flush=True,
                    )
    return results


def _raw_note(res: WrkResult) -> str:
    if res.raw_p99_us is None or res.raw_p50_us is None:
        return ""
    return f" (raw p50 {res.raw_p50_us / 1000:.2f}, p99 {res.raw_p99_us / 1000:.2f})"


@dataclass(frozen=True)
class Summary:
    rps: float
    rps_min: float
    rps_max: float
    p50_us: float
    p99_us: float
    errors: int
    requests: int
    steal_max: float
    raw_p99_us: float | None  # median of the runs' own-latency p99s (None if not timed)


def summarize(runs: Sequence[WrkResult]) -> Summary:
    raw = [r.raw_p99_us for r in runs if r.raw_p99_us is not None]
    return Summary(
        rps=statistics.median(r.rps for r in runs),
        rps_min=min(r.rps for r in runs),
        rps_max=max(r.rps for r in runs),
        p50_us=statistics.median(r.p50_us for r in runs),
        p99_us=statistics.median(r.p99_us for r in runs),
        errors=sum(r.errors for r in runs),
        requests=sum(r.requests for r in runs),
        steal_max=max(r.steal for r in runs),
        raw_p99_us=statistics.median(raw) if raw else None,
    )


def load_table(results: Results, targets: Sequence[Target], concurrencies: Sequence[int]) -> str:
    """One row per (target, c). ``passes`` = how many times one run went through the path file
    (1 or less: no search was repeated within a run); ``steal (max)``: the largest share of
    CPU time the hypervisor took for other guests in any of its runs (``WrkResult.steal``);
    ``p99 ms`` is wrk's (corrected for coordinated omission), ``p99 raw ms`` the requests'
    own, where timed (c=1)."""
    rows: list[list[object]] = []
    for target in targets:
        n_paths = target.path_count()
        for c in concurrencies:
            runs = results.get((target.name, c))
            if not runs:
                continue
            s = summarize(runs)
            passes = f"{s.requests / len(runs) / n_paths:.1f}" if n_paths > 1 else "-"
            rows.append(
                [
                    target.name,
                    c,
                    f"{s.rps:,.0f}",
                    f"{s.rps_min:,.0f}–{s.rps_max:,.0f}",
                    f"{s.p50_us / 1000:.2f}",
                    f"{s.p99_us / 1000:.2f}",
                    "-" if s.raw_p99_us is None else f"{s.raw_p99_us / 1000:.2f}",
                    f"{s.errors}/{s.requests:,}",
                    passes,
                    f"{100 * s.steal_max:.0f}%",
                ]
            )
    headers = [
        "target",
        "c",
        "req/s (median)",
        "req/s range",
        "p50 ms",
        "p99 ms",
        "p99 raw ms",
        "errors/requests",
        "passes",
        "steal (max)",
    ]
    return markdown_table(headers, rows)


def ratio_table(
    results: Results, numerator: str, denominator: str, concurrencies: Sequence[int]
) -> str:
    """reelsearch/Typesense: req/s above 1 is better, p99 below 1 is better."""
    rows: list[list[object]] = []
    for c in concurrencies:
        num, den = results.get((numerator, c)), results.get((denominator, c))
        if not num or not den:
            continue
        n, d = summarize(num), summarize(den)
        rows.append(
            [
                c,
                f"{n.rps / d.rps:.2f}×",
                _p99_ratio(n, d),
                f"{n.p50_us / d.p50_us:.2f}×",
            ]
        )
    headers = ["c", f"{numerator} ÷ {denominator}: req/s", "p99", "p50"]
    return markdown_table(headers, rows)


def ratios_table(
    results: Results, pairs: Sequence[tuple[str, str]], concurrencies: Sequence[int]
) -> str:
    """Several ``ratio_table``s side by side: one req/s and one p99 column per pair."""
    headers = ["c"]
    for num, den in pairs:
        headers += [f"{_short(num)} ÷ {_short(den)}: req/s", "p99"]
    rows: list[list[object]] = []
    for c in concurrencies:
        row: list[object] = [c]
        for num, den in pairs:
            n_runs, d_runs = results.get((num, c)), results.get((den, c))
            if not n_runs or not d_runs:
                row += ["-", "-"]
                continue
            n, d = summarize(n_runs), summarize(d_runs)
            row += [f"{n.rps / d.rps:.2f}×", _p99_ratio(n, d)]
        rows.append(row)
    return markdown_table(headers, rows)


def _p99_ratio(n: Summary, d: Summary) -> str:
    """wrk's p99 ratio, and the requests' own where both were timed (c=1)."""
    ratio = f"{n.p99_us / d.p99_us:.2f}×"
    if n.raw_p99_us is not None and d.raw_p99_us is not None:
        ratio += f" (raw {n.raw_p99_us / d.raw_p99_us:.2f}×)"
    return ratio


def _short(target_name: str) -> str:
    return target_name.removesuffix(" search")


def health_paths(workdir: Path, path: str = "/health") -> Path:
    out = workdir / "paths-health.txt"
    out.write_text(path + "\n", encoding="ascii")
    return out


def parse_concurrency(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency: comma-separated positive integers")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description="wrk load against running servers.")
    parser.add_argument("--typesense-url")
    parser.add_argument("--typesense-key", default="")
    parser.add_argument("--typesense-paths", type=Path)
    parser.add_argument("--reelsearch-url")
    parser.add_argument("--reelsearch-paths", type=Path)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()), help="scratch files"
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--concurrency", type=parse_concurrency, default=[1, 16, 64])
    args = parser.parse_args()
    targets: list[Target] = []
    if args.typesense_url and args.typesense_paths:
        targets.append(
            Target(
                "typesense search",
                args.typesense_url,
                args.typesense_paths,
                {"X-TYPESENSE-API-KEY": args.typesense_key},
            )
        )
    if args.reelsearch_url and args.reelsearch_paths:
        targets.append(Target("reelsearch search", args.reelsearch_url, args.reelsearch_paths))
    if args.reelsearch_url:
        targets.append(
            Target("reelsearch /health", args.reelsearch_url, health_paths(args.workdir))
        )
    if not targets:
        parser.error("give at least one engine's URL (and its paths file)")
    results = measure(targets, args.concurrency, args.duration, args.runs, args.warmup)
    print(load_table(results, targets, args.concurrency))
    if len(targets) > 1 and targets[0].name.startswith("typesense"):
        print()
        print(ratio_table(results, "reelsearch search", "typesense search", args.concurrency))


if __name__ == "__main__":
    main()
