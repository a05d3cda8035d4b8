"""The result cache keys answers with the relevance rules the engine searches with."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from starlette.testclient import TestClient

from reelsearch.cache.keys import RulesVersion
from reelsearch.config import Settings
from reelsearch.http.app import create_app
from reelsearch.search.rulebook import BUNDLED, RuleFiles


def _rewrite(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a new signature even within one clock tick


def test_rules_version_changes_only_when_the_rules_are_reloaded(tmp_path: Path) -> None:
    """Editing a rule file changes the version only once the poller re-reads it; the
    version is a digest of the contents, so the same bytes give the same version."""
    synonyms = tmp_path / "synonyms.txt"
    original = (BUNDLED / "synonyms.txt").read_text(encoding="utf-8")
    _rewrite(synonyms, original, 1_000_000_000)
    files = RuleFiles(str(synonyms), "", poll_seconds=1.0)
    first = files.version

    _rewrite(synonyms, original + "bttf => back to the future\n", 2_000_000_000)
    assert first == files.version  # not reloaded yet: searches still use the old rules
    assert files.reload_if_changed()
    edited = files.version
    assert first != edited

    _rewrite(synonyms, original, 3_000_000_000)
    assert files.reload_if_changed()
    assert first == files.version


def test_cache_reads_the_engines_rules_version(sample_settings: Settings) -> None:
    """The cache's rules version is the engine's own (no file of its own to watch); with
    no engine attached it is empty."""
    assert RulesVersion().current() == ""
    settings = dataclasses.replace(sample_settings, cache="memory")
    with TestClient(create_app(settings)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        expected = RuleFiles("", "", poll_seconds=1.0).version  # the bundled files
        assert expected == state.engine.rules_version()
        assert expected == state.result_cache.rules.current()
        assert client.get("/v1/search", params={"q": "lotr"}).status_code == 200
        assert expected == state.result_cache.context.rules_version
