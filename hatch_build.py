"""Build hook: compile the search engine's hot modules with mypyc when a wheel is built.

Why: a cold search spends about half of the engine's CPU in Python (planning,
ranking titles in tiers, highlights); mypyc turns the typed modules listed under
``[tool.hatch.build.targets.wheel.hooks.custom] modules`` into C extensions of the
same names, with the same behaviour (docs/decisions/0036-compiled-search-modules.md).

Only the regular wheel is compiled, the one ``pip install .`` builds: an editable
install (``pip install -e .``, the tests' and the developers') keeps running the
sources, so an edit takes effect without a rebuild and no stale binary ever shadows
a changed file. CI runs the test suite on a compiled install too (.ci/run).

``BUILD_REELSEARCH_COMPILED=0`` builds a pure-Python wheel. If compiling fails (no C
compiler, say) the wheel is built pure Python with a warning, unless
``BUILD_REELSEARCH_COMPILED=require`` (CI sets it) makes the failure stop the build.
(Not ``REELSEARCH_*``: the service refuses variables of its prefix it does not know.)
``reelsearch serve`` says at start how many modules run compiled.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# The shared library of the compiled group is <GROUP>__mypyc.<tag>.so at the top level.
GROUP = "reelsearch_native"


class CompiledModulesHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version != "standard":
            return
        wanted = os.environ.get("BUILD_REELSEARCH_COMPILED", "auto")
        if wanted == "0":
            return
        modules = list(self.config.get("modules", []))
        try:
            built = self._compile(modules)
        except Exception as exc:  # noqa: BLE001 - any failure: pure Python, said loudly
            if wanted == "require":
                raise
            print(
                f"reelsearch: warning: compiling {len(modules)} modules with mypyc failed "
                f"({type(exc).__name__}: {exc}); building a pure-Python wheel",
                file=sys.stderr,
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["force_include"].update(built)

    def _compile(self, modules: list[str]) -> dict[str, str]:
        """Compile ``modules`` (paths under src/) in a scratch copy of the package; the
        built extensions, as {absolute path: path in the wheel}. Nothing is written into
        the source tree."""
        from mypyc.build import mypycify
        from setuptools import Distribution

        scratch = Path(tempfile.mkdtemp(prefix="reelsearch-mypyc-"))
        self._scratch = scratch  # kept until finalize(): the wheel reads the files from it
        shutil.copytree(Path(self.root) / "src", scratch / "src")
        previous = os.getcwd()
        os.chdir(scratch / "src")  # mypyc names modules from paths relative to here
        try:
            extensions = mypycify(
                [
                    *modules,
                    # The build environment has none of the dependencies: their types are
                    # Any to mypy, which costs the compiled code nothing it relies on.
                    "--ignore-missing-imports",
                    "--cache-dir",
                    str(scratch / "mypy_cache"),
                ],
                opt_level="3",
                group_name=GROUP,
                target_dir=str(scratch / "c"),
            )
            dist = Distribution({"name": GROUP, "ext_modules": extensions})
            build_ext = dist.get_command_obj("build_ext")
            build_ext.build_lib = str(scratch / "lib")  # type: ignore[attr-defined]
            build_ext.build_temp = str(scratch / "obj")  # type: ignore[attr-defined]
            build_ext.ensure_finalized()
            build_ext.run()
        finally:
            os.chdir(previous)
        lib = scratch / "lib"
        built = {str(path): path.relative_to(lib).as_posix() for path in lib.rglob("*.so")}
        if len(built) != len(modules) + 1:  # one per module, and the group's library
            raise RuntimeError(f"mypyc built {sorted(built.values())} for {modules}")
        return built

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
