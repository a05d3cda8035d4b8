"""A tiny ASGI app for the serving tests: /slow?s=SECONDS answers after that long;
/frozen says what the worker inherited frozen from the process that forked it;
/arenas how many glibc malloc arenas serve threads that allocate at once."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import tempfile
import threading
from typing import Any


def malloc_arenas(threads: int = 4) -> int:
    """The arenas glibc's ``malloc_info`` lists once ``threads`` threads have each
    allocated (outside Python's small-object allocator) at the same time."""
    barrier = threading.Barrier(threads + 1)

    def hold() -> None:
        block = bytearray(200_000)  # from malloc, in this thread's arena
        barrier.wait()
        barrier.wait()
        del block

    started = [threading.Thread(target=hold) for _ in range(threads)]
    for thread in started:
        thread.start()
    barrier.wait()  # every block allocated
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "malloc_info.xml")
        stream = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        with open(path) as report:
            arenas = report.read().count("<heap nr=")
    barrier.wait()
    for thread in started:
        thread.join()
    return arenas


def app() -> Any:
    """The factory granian calls in each worker."""
    from reelsearch.serving import serve

    # Read before this worker runs anything of its own: the objects frozen in the
    # parent, and whether the parent's ``serve`` (tracked, as every function) is
    # still in a generation a collection walks.
    frozen = json.dumps(
        {"frozen": gc.get_freeze_count(), "serve_walked": any(o is serve for o in gc.get_objects())}
    ).encode()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/arenas":
            body = json.dumps({"arenas": malloc_arenas()}).encode()
        elif scope["path"] == "/frozen":
            body = frozen
        else:
            await asyncio.sleep(float(scope["query_string"].decode().partition("=")[2] or 0))
            body = b"done"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return slow
