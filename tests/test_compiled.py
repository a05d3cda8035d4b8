"""The search modules a regular wheel compiles with mypyc (hatch_build.py)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

import reelsearch
from reelsearch import compiled

ROOT = Path(__file__).resolve().parent.parent


def test_the_build_and_the_report_name_the_same_modules() -> None:
    """pyproject.toml's list for the build hook and ``compiled.COMPILABLE`` are one list:
    a module added to the build is reported, and a reported one is built."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    paths = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]["modules"]
    names = [path.removesuffix(".py").replace("/", ".") for path in paths]
    assert names == list(compiled.COMPILABLE)
    for path in paths:
        assert (ROOT / "src" / path).is_file(), path


def test_this_install_runs_what_it_was_built_as() -> None:
    """A source checkout (editable install) runs every module as source; CI's compiled
    run (TEST_EXPECT_COMPILED=1, a wheel built with BUILD_REELSEARCH_COMPILED=require)
    runs every one compiled, so its tests test the compiled code, not a silent fallback."""
    if os.environ.get("TEST_EXPECT_COMPILED") == "1":
        assert compiled.compiled_modules() == list(compiled.COMPILABLE)
        assert compiled.describe() == (
            f"{len(compiled.COMPILABLE)} of {len(compiled.COMPILABLE)} search modules "
            "compiled with mypyc"
        )
    elif Path(reelsearch.__file__).resolve().is_relative_to(ROOT / "src"):
        assert compiled.compiled_modules() == []
        assert compiled.describe().startswith("search modules run as Python source")
    else:
        pytest.skip("an installed wheel without TEST_EXPECT_COMPILED=1: nothing to expect")
