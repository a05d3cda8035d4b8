"""Kill one worker of a running `reelsearch serve` under load: what fails, for how long.

Starts the server (its own process group, loopback port), runs ``--clients``
threads that each send ``GET --path`` on kept-alive connections (reconnecting
after an error) for ``--seconds``, and ``kill -9``s worker-1 at one second.
Prints the requests answered and failed, the failures' window relative to the
kill, and when granian logged the replacement. Stops everything it started.

    python bench/kill_worker.py --db /tmp/contract/sample.db --port 8703
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--port", type=int, default=8703)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--path", default="/v1/search?q=star")
    args = parser.parse_args()
    log = Path(f"/tmp/kill_worker_{args.port}.log")
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "reelsearch", "--database-url", f"sqlite:///{args.db}",
             "serve", "--port", str(args.port), "--workers", "2"],  # fmt: skip
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        outcomes: list[tuple[float, bool]] = []
        started = time.monotonic()
        ends = started + args.seconds

        def load() -> None:
            client = httpx.Client(timeout=5.0)
            while time.monotonic() < ends:
                sent = time.monotonic()
                try:
                    ok = client.get(url + args.path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                    client.close()
                    client = httpx.Client(timeout=5.0)
                outcomes.append((sent, ok))
            client.close()

        threads = [threading.Thread(target=load) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        pids = dict(re.findall(r"Spawning worker-(\d+) with PID: (\d+)", log.read_text()))
        killed_at = time.monotonic()
        os.kill(int(pids["1"]), signal.SIGKILL)
        for thread in threads:
            thread.join()
        failed = [sent - killed_at for sent, ok in outcomes if not ok]
        print(
            f"{len(outcomes) - len(failed)} answered, {len(failed)} failed "
            f"({args.clients} clients, {args.seconds:.0f} s, worker-1 killed at 1 s)"
        )
        if failed:
            print(f"failures sent from {min(failed) * 1000:+.0f} ms to "
                  f"{max(failed) * 1000:+.0f} ms relative to the kill")  # fmt: skip
        respawned = "Respawning worker-1" in log.read_text()
        print(f"replacement logged: {respawned}; server still running: {server.poll() is None}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
