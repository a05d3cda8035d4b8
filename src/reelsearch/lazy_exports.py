"""A package's exported names, imported when first asked for (PEP 562).

A serving worker imports a few modules of a package (``reelsearch.catalog.guards``,
``reelsearch.db.engine``); with eager re-exports in the package's ``__init__`` it would
also import everything the package exports (the schema's migrations with alembic, the
PostgreSQL client), megabytes of modules in every worker that it never runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: each name of ``homes`` (name -> the
    module defining it) is imported from its module on first use."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__
