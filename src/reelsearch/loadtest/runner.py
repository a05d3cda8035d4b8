"""``reelsearch loadtest``: run one scenario headless under Locust, bounded in time, and report.

Locust runs in a process of its own (it patches the standard library for
gevent), driven by ``locustfile.py`` through the run directory. This
process waits for it (at most the duration plus a margin, then stops it),
runs the recovery scenario's restart command at its time, and writes the
report from what the visitors recorded.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reelsearch.loadtest.report import analyse, write_report
from reelsearch.loadtest.scenarios import Scenario

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# Locust's own start and stop, the title listing and the last answers: past this, it hangs.
MARGIN_SECONDS = 30.0
RESTART_TIMEOUT = 120.0


def is_loopback(host: str) -> bool:
    """True if every address ``host``'s URL names is on this machine's loopback."""
    name = urlsplit(host).hostname or ""
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def run_loadtest(
    scenario: Scenario, host: str, out: Path, *, allow_remote: bool = False, command: str = ""
) -> dict[str, Any]:
    """Run ``scenario`` against ``host``; write the report into ``out``; return its figures."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"{host} is not a loopback address; load tests stay on this machine "
                         "unless --allow-remote is given")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("requests.jsonl", "metrics.jsonl"):
        (out / stale).unlink(missing_ok=True)
    (out / "scenario.json").write_text(json.dumps(scenario.as_json()))
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", host, "--reelsearch-run", str(out),
            # The load shape (locustfile.Schedule) ends the run at its duration; the
            # wait below stops a Locust that does not.
            "--stop-timeout", "2", "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
    events: dict[str, Any] = {}
    with (out / "locust.log").open("wb") as log:
        locust = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
        events["load_started"] = time.time()
        restart = None
        if scenario.restart_command:
            restart = threading.Thread(
                target=_restart_at, args=(scenario, out, events), daemon=True
            )
            restart.start()
        try:
            locust.wait(timeout=scenario.duration + MARGIN_SECONDS)
        except subprocess.TimeoutExpired:
            events["locust_stopped_by_runner"] = True
            os.killpg(locust.pid, signal.SIGTERM)
            try:
                locust.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(locust.pid, signal.SIGKILL)
                locust.wait()
        if restart is not None:
            restart.join(timeout=RESTART_TIMEOUT)
    events["load_ended"] = time.time()
    events["locust_exit_code"] = locust.returncode
    result = analyse(out, scenario.as_json(), events)
    write_report(out, result, command or shlex.join(argv))
    return result


def _restart_at(scenario: Scenario, out: Path, events: dict[str, Any]) -> None:
    """Once the visitors are sending, wait ``restart_at`` seconds and run the restart command."""
    requests = out / "requests.jsonl"
    deadline = time.time() + MARGIN_SECONDS
    while not (requests.exists() and requests.stat().st_size) and time.time() < deadline:
        time.sleep(0.05)
    with requests.open() as first:
        started = json.loads(first.readline() or "[0]")[0] or time.time()
    time.sleep(max(0.0, started + scenario.restart_at - time.time()))
    events["restart_started"] = time.time()
    with (out / "restart.log").open("wb") as log:
        try:
            done = subprocess.run(scenario.restart_command, shell=True, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=RESTART_TIMEOUT)  # fmt: skip
            events["restart_exit_code"] = done.returncode
        except subprocess.TimeoutExpired:
            events["restart_exit_code"] = "timed out"
    events["restart_ended"] = time.time()
