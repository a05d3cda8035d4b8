"""Hit rate of L1 admission policies on a Zipf stream (docs/decisions/0011-result-cache.md).

Replays a seeded Zipf(s) stream of search keys through the real ``MemoryLevel``
with each admission policy, at several byte bounds, and reports the hit rate
(what share of requests found their answer in L1). Entry sizes vary like
search pages (log-normal around 3 kB). Also times a lookup per policy.

    python bench/zipf_policies.py --requests 300000 --distinct 100000 --exponent 1.1
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from reelsearch.cache.counters import CacheCounters
from reelsearch.cache.entry import CachedResponse
from reelsearch.cache.memory import MemoryLevel

# "+doorkeeper": a miss is stored only from its second sighting (L1's count of at least 2
# after its lookup), as the result cache does (decision 0039).
POLICIES = ("lru", "tinylfu", "tinylfu+doorkeeper")


def zipf_stream(requests: int, distinct: int, exponent: float, seed: int) -> np.ndarray:
    """Ranks 0..distinct-1 drawn with P(rank k) proportional to (k+1)^-exponent."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, distinct + 1) ** exponent
    return rng.choice(distinct, size=requests, p=weights / weights.sum())


def entry_sizes(distinct: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return np.clip(rng.lognormal(np.log(3000), 0.6, distinct), 300, 40_000).astype(int)


def hit_rate(policy: str, stream: np.ndarray, sizes: np.ndarray, max_bytes: int) -> float:
    admission, _, doorkeeper = policy.partition("+")
    level = MemoryLevel(max_bytes, 3600.0, admission=admission, counters=CacheCounters())
    now = time.time()
    bodies = {int(s): b"x" * int(s) for s in set(sizes.tolist())}
    hits = 0
    for rank in stream.tolist():
        key = f"q{rank}"
        if level.lookup(key, now) is not None:
            hits += 1
            continue
        if doorkeeper and level.frequency(key) <= 1:
            continue  # a first sighting: computed, not stored
        body = bodies[int(sizes[rank])]
        level.put(key, CachedResponse(body, '"x"', "", now, now + 3600, now + 7200), now)
    return hits / len(stream)


def lookup_cost_ns(policy: str, n: int = 200_000) -> float:
    level = MemoryLevel(64 << 20, 3600.0, admission=policy.partition("+")[0])
    now = time.time()
    for k in range(1000):
        level.put(f"q{k}", CachedResponse(b"x" * 2000, '"x"', "", now, now + 60, now + 90), now)
    keys = [f"q{k % 1000}" for k in range(n)]
    started = time.perf_counter_ns()
    for key in keys:
        level.lookup(key, now)
    return (time.perf_counter_ns() - started) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=300_000)
    p.add_argument("--distinct", type=int, default=100_000)
    p.add_argument("--exponent", type=float, default=1.1)
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--bounds-mib", default="1,4,16,64")
    args = p.parse_args()
    stream = zipf_stream(args.requests, args.distinct, args.exponent, args.seed)
    sizes = entry_sizes(args.distinct, args.seed)
    total = int(sizes.sum())
    print(
        f"Zipf({args.exponent}) stream: {args.requests:,} requests over {args.distinct:,} "
        f"distinct searches ({len(set(stream.tolist())):,} asked), "
        f"all answers {total / 2**20:.0f} MiB"
    )
    print("| L1 bound | " + " | ".join(POLICIES) + " |")
    print("| --- |" + " --- |" * len(POLICIES))
    for mib in [float(x) for x in args.bounds_mib.split(",")]:
        rates = [hit_rate(policy, stream, sizes, int(mib * 2**20)) for policy in POLICIES]
        print(f"| {mib:g} MiB | " + " | ".join(f"{r:.1%}" for r in rates) + " |")
    print()
    costs = (f"{p} {lookup_cost_ns(p):.0f} ns" for p in POLICIES[:2])
    print("lookup (hit) cost: " + ", ".join(costs))
    asyncio.run(asyncio.sleep(0))


if __name__ == "__main__":
    main()
