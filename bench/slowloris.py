"""How many slow connections does it take to lock new clients out, and for how long?

A slowloris client opens connections and sends an unfinished request head,
holding each connection (and the server's slot for it) while sending nothing
more. This script opens them in steps of ``--step`` against a server on
loopback and, after each step, times a fresh client's ``GET /health`` (its
own new connection). The first step at which that client gets no answer
within ``--probe-timeout`` seconds is the lock-out count. Then it stops
opening connections and measures how long until a fresh client is answered
again (the slow connections are dropped by the server's header timeout).

Loopback only, bounded in connections (``--max``) and time (``--budget``);
every socket is closed at the end.

    python bench/slowloris.py --port 8700 --max 4096 --step 256
"""

from __future__ import annotations

import argparse
import asyncio
import time

# An unfinished request head: a real header line, then a header that never ends.
_SLOW_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
_PROBE = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def _probe(host: str, port: int, timeout: float) -> float | None:
    """Seconds a fresh client waits for its answer, or None if none came in ``timeout``."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(_PROBE)
            await writer.drain()
            status = await reader.readline()
        if not status.startswith(b"HTTP/1.1 200"):
            return None
        return time.perf_counter() - started
    except (TimeoutError, OSError):
        return None
    finally:
        if writer is not None:
            writer.close()


async def _open_slow(host: str, port: int, count: int, into: list[asyncio.StreamWriter]) -> int:
    """Open ``count`` slow connections; returns how many could be opened."""

    async def one() -> None:
        _, writer = await asyncio.open_connection(host, port)
        writer.write(_SLOW_HEAD)
        await writer.drain()
        into.append(writer)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    return sum(1 for r in results if not isinstance(r, BaseException))


async def measure(args: argparse.Namespace) -> None:
    if not args.host.startswith("127."):
        raise SystemExit("loopback addresses only")
    deadline = time.monotonic() + args.budget
    slow: list[asyncio.StreamWriter] = []
    locked_at: int | None = None
    try:
        baseline = await _probe(args.host, args.port, args.probe_timeout)
        print(f"baseline probe: {baseline}")
        while len(slow) < args.max and time.monotonic() < deadline:
            await _open_slow(args.host, args.port, args.step, slow)
            await asyncio.sleep(0.2)
            waited = await _probe(args.host, args.port, args.probe_timeout)
            shown = "no answer" if waited is None else f"{waited * 1000:.1f} ms"
            print(f"{len(slow):>6} slow connections open: fresh client {shown}")
            if waited is None:
                locked_at = len(slow)
                break
        if locked_at is None:
            print(f"not locked out with {len(slow)} slow connections")
            return
        started = time.monotonic()
        while time.monotonic() < deadline:
            if await _probe(args.host, args.port, 1.0) is not None:
                back = time.monotonic() - started
                print(f"locked out at {locked_at} slow connections; "
                      f"fresh clients answered again after {back:.1f} s")  # fmt: skip
                return
        print(f"locked out at {locked_at}; still locked out when the budget ran out")
    finally:
        for writer in slow:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max", type=int, default=4096, help="most slow connections to open")
    parser.add_argument("--step", type=int, default=256)
    parser.add_argument("--probe-timeout", type=float, default=2.0)
    parser.add_argument("--budget", type=float, default=90.0, help="seconds, at most")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
