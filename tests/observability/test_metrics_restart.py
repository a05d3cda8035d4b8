"""A worker process that dies and is replaced neither resets nor doubles a total.

Real processes write to one multiprocess directory, as granian's workers do
under ``reelsearch serve``; one is killed (SIGKILL: no chance to clean up)
and a new one takes its place.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from reelsearch.observability.metrics import Metrics
from reelsearch.observability.sampler import mark_dead_workers, pid_exists

WORKER = """
import sys, time
from reelsearch.observability.metrics import Metrics
metrics = Metrics.from_environment()
metrics.workers.set(1)
for _ in range(int(sys.argv[1])):
    metrics.observe_request("/v1/search", "GET", 200, 0.001)
metrics.flush()
print("counted", flush=True)
time.sleep(120)
"""


def start_worker(directory: Path, requests: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(requests)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "counted\n"
    return proc


def read(directory: Path) -> tuple[float, float]:
    """(requests counted, live workers) as a scrape of ``directory`` reports them."""
    text = Metrics(str(directory)).render(0.0)[0].decode()
    found = {
        s.name: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name in ("reelsearch_http_requests_total", "reelsearch_process_workers")
    }
    return found["reelsearch_http_requests_total"], found["reelsearch_process_workers"]


def test_replaced_worker_keeps_totals_and_drops_its_gauges(tmp_path: Path) -> None:
    """Killed after 3 requests, replaced by a worker that answers 2: 5 in all, one live
    worker once the dead one is marked, and the dead one's gauges gone."""
    first = start_worker(tmp_path, 3)
    second: subprocess.Popen[str] | None = None
    try:
        assert read(tmp_path) == (3, 1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_worker(tmp_path, 2)
        # Until someone marks it dead, the killed worker's live gauge still counts.
        assert read(tmp_path) == (5, 2)
        assert [first.pid] == mark_dead_workers(str(tmp_path), pid_exists)
        assert read(tmp_path) == (5, 1)
        assert mark_dead_workers(str(tmp_path), pid_exists) == []
    finally:
        for proc in (first, second):
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                assert proc.stdout is not None
                proc.stdout.close()
