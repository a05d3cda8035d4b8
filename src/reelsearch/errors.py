"""Every error reelsearch raises on purpose.

ReelsearchError
├── ConfigError           a setting is missing or out of range
├── CatalogError          the catalog cannot be used
│   ├── ImportFailed      an import was rolled back; the old catalog is untouched
│   │   └── BadFileFormat the file is not what the importer reads
│   └── DatabaseUnavailable the database server can't be reached now (-> 503)
│       ├── ConnectionLost    a pooled connection died under a read (retried once)
│       ├── CatalogFileMissing the SQLite catalog file was deleted under the server
│       └── CatalogNotImported the tables exist but no import (or write) ever committed
├── SearchStopped         a search ended before its answer
│   ├── SearchTimedOut    it ran past the search deadline (-> 503 with Retry-After)
│   └── SearchCancelled   the client went away while it ran
├── InvalidRequest        a client sent something we refuse (-> 4xx)
│   ├── NotFound          the thing asked for does not exist (-> 404)
│   └── Forbidden         an admin-only feature without the admin token (-> 403)
├── TransactionConflict   a transaction lost a race (40001/40P01) and was not retried again
└── AddressInUse          `serve` can't listen: another process holds the port
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


class DatabaseUnavailable(CatalogError):
    """The catalog database is down, restarting, or has no free connection in time."""

    # Seconds a client should wait before retrying: a restart takes a few.
    retry_after = 2


class ConnectionLost(DatabaseUnavailable):
    """A pooled connection died under a read; the read may succeed on a fresh one."""


class CatalogFileMissing(DatabaseUnavailable):
    """The SQLite catalog file was deleted under a running server; reads wait for a new one."""


class CatalogNotImported(DatabaseUnavailable):
    """The catalog's tables exist but nothing was ever committed into them.

    Version 0: the schema an import creates before its own transaction, left
    alone when that first import was interrupted or refused. Served, it would
    answer every search with 0 hits; refused, it says what to do. A 503 like
    a missing file: the server serves once an import completes.
    """

    def __init__(self, where: str = "the catalog database") -> None:
        super().__init__(
            f"{where} holds no catalog: no import has completed into it (none ran, or the "
            "first one was interrupted or refused). Run `reelsearch import ...` with the "
            "same database URL."
        )


class SearchStopped(ReelsearchError):
    """A search was stopped before it had an answer."""


class SearchTimedOut(SearchStopped):
    """A search ran past its deadline and was interrupted."""

    # A second: the deadline is well under it, and the load that slowed this may pass.
    retry_after = 1


class SearchCancelled(SearchStopped):
    """The client disconnected while its search ran; nobody waits for the answer."""


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


class Forbidden(InvalidRequest):
    """An admin-only feature was asked for without the right admin token."""

    status_code = 403

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, code="forbidden")


class TransactionConflict(ReelsearchError):
    """A transaction lost a race (serialization failure or deadlock) and was not retried again."""

    def __init__(self, message: str, *, sqlstate: str, attempts: int) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate  # "40001" or "40P01"
        self.attempts = attempts  # how many times the unit ran


class AddressInUse(ReelsearchError):
    """``reelsearch serve`` can't listen on its address: another process holds the port."""
