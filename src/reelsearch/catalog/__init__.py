"""The movie catalog: schema, migrations, importers and the import transaction.

The names below are imported when first asked for (PEP 562), not with the package: a
serving worker imports ``reelsearch.catalog.guards`` and the like, and must not pull in
the schema's migrations (alembic, mako, pygments) or the import writer, ~20 MiB of
modules in every worker that it never runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelsearch.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from reelsearch.catalog.records import BadRow, ImportReport, MovieRecord
    from reelsearch.catalog.schema import upgrade_schema
    from reelsearch.catalog.writer import CatalogImport

__all__ = ["BadRow", "CatalogImport", "ImportReport", "MovieRecord", "upgrade_schema"]

_HOMES = {
    "BadRow": "reelsearch.catalog.records",
    "ImportReport": "reelsearch.catalog.records",
    "MovieRecord": "reelsearch.catalog.records",
    "upgrade_schema": "reelsearch.catalog.schema",
    "CatalogImport": "reelsearch.catalog.writer",
}


__getattr__ = lazy_exports(__name__, _HOMES)
