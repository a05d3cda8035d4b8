"""Audit a pinned dependency set with pip-audit; fail on a known vulnerability that has a fix.

    python scripts/audit_deps.py REQUIREMENTS [--require-service] [--from-json FILE]

Runs ``pip-audit -r REQUIREMENTS`` against PyPI's vulnerability data (pip-audit's
default service: each pinned release's JSON document on pypi.org) and decides:

- a vulnerability with a fixed version: exit 1, naming the package, the id and the fix;
- a vulnerability with no fix yet: printed, exit 0 (nothing to upgrade to);
- a dependency the service could not look up: counted and printed in a banner
  "NOT AUDITED". pip-audit itself then says "No known vulnerabilities found"
  and exits 0, which reads as a pass although nothing was checked. With
  ``--require-service`` that is exit 2; without it, exit 0 (see docs/decisions/0011:
  the CI network reaches a PyPI mirror that has no per-release documents).

``--from-json`` reads a saved ``pip-audit --format json`` report instead of running it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_pip_audit(requirements: Path) -> dict[str, Any]:
    """pip-audit's JSON report on a fully pinned file (no resolver, no virtualenv built)."""
    argv = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps",
            "--disable-pip", "--format", "json", "--progress-spinner", "off"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if not done.stdout.strip().startswith("{"):
        raise SystemExit(f"pip-audit failed (exit {done.returncode}):\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def decide(report: dict[str, Any], require_service: bool) -> int:
    """Print what the report says; return 0 (pass), 1 (fixable vulnerability) or 2 (unaudited)."""
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    fixable, unfixed = [], []
    for dep in audited:
        for vuln in dep.get("vulns", []):
            line = f"{dep['name']} {dep['version']}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line}, fixed in {', '.join(vuln['fix_versions'])}")
            else:
                unfixed.append(f"{line}, no fixed release yet")
    print(f"pip-audit: {len(audited)} of {len(dependencies)} pinned dependencies audited")
    for line in unfixed:
        print(f"  known vulnerability without a fix: {line}")
    for line in fixable:
        print(f"  VULNERABLE, upgrade: {line}")
    if skipped:
        print("=" * 72)
        print(f"NOT AUDITED: the vulnerability service could not look up {len(skipped)} of "
              f"{len(dependencies)} dependencies, e.g. {skipped[0]['name']}: "
              f"{skipped[0]['skip_reason']}")  # fmt: skip
        print("pip-audit's 'No known vulnerabilities found' does not cover these.")
        print("=" * 72)
    if fixable:
        return 1
    if skipped and require_service:
        return 2
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", type=Path)
    parser.add_argument("--require-service", action="store_true")
    parser.add_argument("--from-json", type=Path)
    args = parser.parse_args()
    if args.from_json is not None:
        report = json.loads(args.from_json.read_text())
    else:
        report = run_pip_audit(args.requirements)
    raise SystemExit(decide(report, args.require_service))


if __name__ == "__main__":
    main()
