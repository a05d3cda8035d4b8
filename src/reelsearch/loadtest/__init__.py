"""Load tests with Locust: scenarios, the simulated visitors, the runner and the report."""

from reelsearch.loadtest.scenarios import SCENARIOS, Scenario, scenario

__all__ = ["SCENARIOS", "Scenario", "scenario"]
