"""``reelsearch serve``: the granian server, its worker processes and its limits.

What a careful operator would set, set once here (docs/decisions/0010):

- a crashed worker is replaced at once (granian's ``respawn_failed_workers``);
  a replacement that dies again within granian's crash-loop window (5.5 s)
  ends the server with exit status 1, so a broken deploy fails where the
  supervisor (systemd ``Restart=``, Kubernetes) sees it and backs off;
- a stopping worker finishes its in-flight requests, for at most
  ``shutdown_timeout`` seconds, before it is killed;
- each worker serves at most ``connections_per_worker`` connections; a client
  has ``header_timeout`` seconds to send its request head, so slow clients are
  dropped instead of holding a slot for granian's default 30 s;
- the port is tried first without SO_REUSEPORT: granian binds with it, and a
  second server on a taken port would otherwise share it silently;
- a request head may take granian's read buffer at most, well above the app's
  own bounds (a target over 8 KiB, header fields over 32 KiB: JSON 414/431);
  what granian alone refuses, with a bodiless status, is listed in
  ``http/middleware/head_limits.py``;
- what this process has loaded (the whole app: ``reelsearch.catalog.upgrade``
  imports it) is frozen out of the garbage collector's view before granian
  forks the workers (``freeze_before_fork``), so their pages stay shared, and
  the workers' threads allocate from one glibc arena (``one_malloc_arena``).
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import resource
import socket
import sys

from reelsearch.config import Settings
from reelsearch.errors import AddressInUse
from reelsearch.http.apikeys import parse_keys
from reelsearch.http.middleware.head_limits import GRANIAN_HEAD_BUFFER_BYTES

APP_FACTORY = "reelsearch.http.app:app_from_env"
# glibc's malloc.h: the most arenas malloc may create (mallopt's parameter number).
_M_ARENA_MAX = -8


def check_address_free(host: str, port: int) -> None:
    """Raise ``AddressInUse`` if another process listens on ``host:port``.

    SO_REUSEADDR (without SO_REUSEPORT) lets the bind succeed over sockets
    left in TIME_WAIT by a server that just stopped, but not over a live
    listener, whatever options that one was bound with.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUse(
                    f"{host}:{port} is already in use by another process; stop it or "
                    "choose another port (--port or REELSEARCH_PORT)"
                ) from None
            raise AddressInUse(f"can't listen on {host}:{port}: {exc.strerror}") from None


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft file-descriptor limit toward ``wanted`` (workers inherit it).

    Returns the soft limit now in force; it never exceeds the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def freeze_before_fork() -> int:
    """Collect once, then move every object of this process to the collector's permanent
    generation, before granian forks the workers from it; how many objects that is.

    A forked worker shares this process's pages until it writes to them. A full
    collection in a worker writes to the header of every object it walks, the ones
    inherited from here included (~700 modules, ~45 MB of heap), so each worker soon
    held a private copy of most of them. Frozen, they are not walked: a 2-worker server
    on the sample went from 163-167 to 148-149 MiB PSS after 300 searches
    (bench/memory.py; decision 0044). Reference counts still copy the pages of the
    objects a worker uses, which is what it should pay. The collection first frees the
    cycles the start-up left (this process only supervises: nothing frozen here is
    collected later).

    Until the catalog first changes: a worker's reload of a new catalog version unfreezes
    its whole heap, collects and freezes again (``cache/heap.py``: the old snapshot's
    cycles), and that one collection walks the inherited objects too (measured: 144 ->
    178 MiB after a write, against 164 -> 197 for the code before). Granian forks its
    workers where the start method is ``fork`` (Linux up to Python 3.13); started
    otherwise, they inherit nothing to share and this is moot.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def one_malloc_arena() -> bool:
    """Have glibc's malloc serve every thread of the workers from one arena (its
    ``M_ARENA_MAX``), set before granian forks them; whether it could be set.

    A worker runs its event loop on a thread of granian's ("uvloop_0") and reads
    in anyio's threads, so glibc gave each its own arena. What a thread frees
    stays in its arena for that thread's next allocations: the loop thread's arena
    alone grew to ~9 MB of private pages in a worker after 300 searches, beside
    the main arena's free space. One arena: a 2-worker server on the sample held
    134-136 MiB PSS after the same 300 searches instead of 148-149, at the same
    throughput (bench/alternate_servers.sh, 7 rounds; decision 0044). The
    lock the threads share is taken rarely: Python's small objects come from its
    own allocator, glibc's small chunks from a per-thread cache, granian's Rust
    side from its own jemalloc, and the loop thread holds the GIL for the rest.
    ``MALLOC_ARENA_MAX`` in the environment, if set, is the operator's and wins. Set
    here, it reaches forked workers only (see ``freeze_before_fork``).
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_ARENA_MAX, 1))


def serve(settings: Settings, app_factory: str = APP_FACTORY) -> None:
    """Run granian with ``settings.workers`` processes until SIGINT/SIGTERM.

    ``app_factory`` ("module:function") builds the ASGI app in each worker.
    """
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings

    check_address_free(settings.host, settings.port)
    parse_keys(settings.api_keys)  # a bad entry fails here, not in every worker
    # Each connection is a descriptor; leave room for the catalog, logs and pools.
    wanted = settings.workers * settings.connections_per_worker + 1024
    limit = raise_open_files_limit(wanted)
    if limit < wanted:
        print(f"reelsearch: warning: the open-files limit is {limit}, below the {wanted} "
              f"that {settings.workers} workers x {settings.connections_per_worker} "
              "connections need; raise it (ulimit -n) or lower "
              "REELSEARCH_CONNECTIONS_PER_WORKER", file=sys.stderr)  # fmt: skip
    one_malloc_arena()
    freeze_before_fork()
    Granian(
        app_factory,
        factory=True,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        interface=Interfaces.ASGI,
        # uvloop and HTTP/1 only: measured in docs/decisions/0001.
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        log_access=False,
        backlog=settings.listen_backlog,
        backpressure=settings.connections_per_worker,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(settings.header_timeout * 1000)),
            keep_alive=True,
            # The most a request head may take before granian refuses it with a bare 431
            # (its default, stated here): above the app's own head bounds, which answer
            # in JSON. What only granian refuses: http/middleware/head_limits.py.
            max_buffer_size=GRANIAN_HEAD_BUFFER_BYTES,
        ),
        respawn_failed_workers=True,
        workers_kill_timeout=max(1, round(settings.shutdown_timeout)),
    ).serve()
