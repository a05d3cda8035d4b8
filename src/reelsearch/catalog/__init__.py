"""The movie catalog: schema, migrations, importers and the import transaction."""

from reelsearch.catalog.records import BadRow, ImportReport, MovieRecord
from reelsearch.catalog.schema import upgrade_schema
from reelsearch.catalog.writer import CatalogImport

__all__ = ["BadRow", "CatalogImport", "ImportReport", "MovieRecord", "upgrade_schema"]
