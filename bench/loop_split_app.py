"""A server worker app that splits its event-loop thread's CPU: engine vs everything else.

Why: over HTTP a cold search's server CPU is the engine's, the HTTP path's and
the server's (granian's threads); /proc gives the whole, the in-process benches
give parts on a warmer cache than a loaded server has. This wraps the real app
(``app_from_env``) in each worker and, for requests START..STOP (env
``SPLIT_START``, ``SPLIT_STOP``), adds up the loop thread's CPU
(``time.thread_time``) inside ``engine.search`` and in all, then writes
``SPLIT_OUT.<pid>.json`` with per-request figures and every thread's CPU
from /proc. Run by bench/loop_split.sh; not for production.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from reelsearch.http.app import app_from_env

START = int(os.environ.get("SPLIT_START", "500"))
STOP = int(os.environ.get("SPLIT_STOP", "2500"))
OUT = os.environ.get("SPLIT_OUT", "/tmp/loop_split")


def _thread_ticks() -> dict[str, int]:
    found = {}
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{tid}/stat") as f:
            text = f.read()
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        found[f"{tid}:{name}"] = int(fields[11]) + int(fields[12])
    return found


def factory() -> Any:
    app = app_from_env()
    count = 0
    engine_cpu = [0.0]
    marks: dict[str, Any] = {}

    def wrap_engine() -> None:
        engine = app.state.engine
        search = engine.search

        async def timed(query: Any, deadline: Any = None) -> Any:
            started = time.thread_time()
            try:
                return await search(query, deadline)
            finally:
                engine_cpu[0] += time.thread_time() - started

        engine.search = timed

    async def split(scope: Any, receive: Any, send: Any) -> None:
        nonlocal count
        if scope["type"] == "http":
            count += 1
            if count == START:
                wrap_engine()
                marks.update(loop=time.thread_time(), ticks=_thread_ticks())
            elif count == STOP:
                n = STOP - START
                ticks, tick = _thread_ticks(), os.sysconf("SC_CLK_TCK")
                loop = (time.thread_time() - marks["loop"]) / n * 1e6
                report = {
                    "loop_thread_us": round(loop, 1),
                    "engine_us": round(engine_cpu[0] / n * 1e6, 1),
                    "loop_less_engine_us": round(loop - engine_cpu[0] / n * 1e6, 1),
                    "threads_us": {
                        k: round((v - marks["ticks"].get(k, 0)) / tick / n * 1e6, 1)
                        for k, v in ticks.items()
                    },
                }
                with open(f"{OUT}.{os.getpid()}.json", "w") as f:
                    json.dump(report, f)
        await app(scope, receive, send)

    split.state = app.state  # type: ignore[attr-defined]
    return split
