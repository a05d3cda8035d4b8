"""The CI dependency audit's decision (scripts/audit_deps.py) on pip-audit reports.

The reports are in pip-audit's JSON format (``--format json``); the script is
run as CI runs it, so its exit status is what fails or passes the build.
"""

# Asserts read `expected == actual` (STYLE.md); SIM300 would flip the literal ones.
# ruff: noqa: SIM300

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit_deps.py"
LOCK = Path(__file__).resolve().parent.parent / "constraints.txt"

CLEAN = {"name": "orjson", "version": "3.13.0", "vulns": []}
FIXABLE = {
    "name": "requests",
    "version": "2.25.0",
    "vulns": [{"id": "GHSA-j8r2-6x86-q33q", "fix_versions": ["2.31.0"], "aliases": []}],
}
UNFIXED = {
    "name": "somelib",
    "version": "1.0",
    "vulns": [{"id": "PYSEC-2099-1", "fix_versions": [], "aliases": []}],
}
SKIPPED = {
    "name": "alembic",
    "skip_reason": "Dependency not found on PyPI and could not be audited: alembic (1.20.1)",
}


def audit(
    tmp_path: Path, *dependencies: dict[str, object], strict: bool = False
) -> tuple[int, str]:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"dependencies": list(dependencies), "fixes": []}))
    argv = [sys.executable, str(SCRIPT), str(LOCK), "--from-json", str(report)]
    done = subprocess.run(
        argv + (["--require-service"] if strict else []),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout


def test_a_vulnerability_with_a_fixed_release_fails_the_audit(tmp_path: Path) -> None:
    """Exit 1, naming the package, the advisory and the release that fixes it."""
    status, out = audit(tmp_path, CLEAN, FIXABLE)
    assert 1 == status
    assert "VULNERABLE, upgrade: requests 2.25.0: GHSA-j8r2-6x86-q33q, fixed in 2.31.0" in out


def test_a_vulnerability_without_a_fix_is_reported_but_passes(tmp_path: Path) -> None:
    """Nothing to upgrade to: printed, exit 0."""
    status, out = audit(tmp_path, CLEAN, UNFIXED)
    assert 0 == status
    assert "without a fix: somelib 1.0: PYSEC-2099-1" in out


def test_dependencies_the_service_could_not_look_up_are_announced(tmp_path: Path) -> None:
    """pip-audit passes them silently; the script says NOT AUDITED and counts them."""
    status, out = audit(tmp_path, CLEAN, SKIPPED)
    assert 0 == status
    assert "1 of 2 pinned dependencies audited" in out
    assert "NOT AUDITED: the vulnerability service could not look up 1 of 2" in out


def test_require_service_fails_when_anything_went_unaudited(tmp_path: Path) -> None:
    """With --require-service an unaudited dependency is exit 2; a fixable one still 1."""
    assert 2 == audit(tmp_path, CLEAN, SKIPPED, strict=True)[0]
    assert 1 == audit(tmp_path, FIXABLE, SKIPPED, strict=True)[0]
    assert 0 == audit(tmp_path, CLEAN, strict=True)[0]


def test_the_lock_pins_every_dependency_exactly() -> None:
    """constraints.txt is comments and name==version lines only (pip-audit needs pins)."""
    lines = [line for line in LOCK.read_text().splitlines() if line]
    assert [] == [line for line in lines if not line.startswith("#") and "==" not in line]
    assert "starlette" in {line.split("==")[0].lower() for line in lines}
