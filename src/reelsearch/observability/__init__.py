"""Observability: Prometheus metrics, structured logs, slow requests, readiness, profiling."""

from reelsearch.observability.instrumentation import Instrumentation
from reelsearch.observability.metrics import Metrics
from reelsearch.observability.stages import StageClock, start_stages

__all__ = ["Instrumentation", "Metrics", "StageClock", "start_stages"]
