"""Every error reelsearch raises on purpose.

ReelsearchError
├── ConfigError           a setting is missing or out of range
├── CatalogError          the catalog cannot be used
│   └── ImportFailed      an import was rolled back; the old catalog is untouched
│       └── BadFileFormat the file is not what the importer reads
└── InvalidRequest        a client sent something we refuse (-> 4xx)
    └── NotFound          the thing asked for does not exist (-> 404)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reelsearch.catalog.records import ImportReport


class ReelsearchError(Exception):
    """Base class of every deliberate reelsearch error."""


class ConfigError(ReelsearchError):
    """A setting is missing, malformed or out of range."""


class CatalogError(ReelsearchError):
    """The catalog database cannot be opened, migrated or read."""


class ImportFailed(CatalogError):
    """An import stopped and was rolled back; the previous catalog is untouched."""

    # What the import had read when it failed (set by CatalogImport).
    report: ImportReport | None = None


class BadFileFormat(ImportFailed):
    """The input file is not in the format the importer reads."""


class InvalidRequest(ReelsearchError):
    """A client request we refuse, with the parameter at fault."""

    status_code = 400

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class NotFound(InvalidRequest):
    """The requested resource does not exist."""

    status_code = 404

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_found")
